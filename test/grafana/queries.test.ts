import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SelfMetricsSnapshotter } from '../../src/jobs/self-metrics-snapshot.js';
import type { Service } from '../../src/app/service.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import {
  alertQueries, alertRules, allPanels, dashboardQueries, loadDashboards, type AlertRule, type DashboardQuery, type Json,
} from './grafana-files.js';
import { expandDashboardQuery, expandMacros, type VariableValue } from './grafana-sql.js';
import { LATENCY_SLO_MS, RECOVERED_TENANT, seedTraffic, STUCK_RUN, TENANTS } from './seed.js';

// Every panel, variable and annotation query of every bundled dashboard, and every alert rule query,
// run against the embedded ClickHouse after real traffic went through real ingest: each must run,
// return what its panel or rule needs, and the seeded incidents must show up and fire.

interface Column {
  name: string;
  type: string;
}

interface Result {
  columns: Column[];
  rows: Record<string, unknown>[];
}

let service: Service;
/** evaluation time: a second after seeding, as Grafana's $__timeFilter only reaches whole seconds */
let now: number;

beforeAll(async () => {
  const dataDir = tempDataDir();
  const policyFile = join(dataDir, 'breakwater.yaml');
  writeFileSync(
    policyFile,
    'prices:\n  gpt-4o: { input: 2.5, output: 10 }\n  gpt-4o-mini: { input: 0.15, output: 0.6 }\n  claude-sonnet-4-5: { input: 3, output: 15 }\n' +
      // each tenant's own latency SLO: a fixed number would get one of them wrong (initech has none)
      `degradation:\n  tenants:\n    ${TENANTS.runaway}: { triggers: { latencyP95Ms: ${LATENCY_SLO_MS.runaway} } }\n    ${TENANTS.healthy}: { triggers: { latencyP95Ms: ${LATENCY_SLO_MS.healthy} } }\n`,
  );
  service = await startTestService({ dataDir, policyFile, policyFileExplicit: true });
  const snapshots = new SelfMetricsSnapshotter(service.metrics.registry, service.store.client, {
    tenantThresholds: { windows: service.core.windows, policy: service.core.policy },
  });
  await snapshots.snapshot();
  await seedTraffic(service);
  await snapshots.snapshot();
  now = Date.now() + 1000;
});

afterAll(async () => {
  await service?.stop();
});

async function run(sql: string): Promise<Result> {
  const result = await service.store.client.query({ query: sql, format: 'JSON' });
  const body = await result.json<Record<string, unknown>>();
  return { columns: body.meta as Column[], rows: body.data };
}

const TIME_TYPE = /^(Nullable\()?DateTime(64)?(\(.*\))?\)?$/;
const NUMERIC_TYPE = /^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*)\)?$/;
const STRING_TYPE = /^(Nullable\()?(LowCardinality\()?String\)?\)?$/;
const isTime = (c: Column) => TIME_TYPE.test(c.type);
const isNumeric = (c: Column) => NUMERIC_TYPE.test(c.type);
const isString = (c: Column) => STRING_TYPE.test(c.type);

function names(columns: Column[]): string[] {
  return columns.map((c) => c.name);
}

/** What the panel (or variable, or annotation) needs from one query's result; empty when satisfied. */
function shapeProblems(query: DashboardQuery, result: Result): string[] {
  const problems: string[] = [];
  const cols = result.columns;
  const panelType: string = query.panel?.type ?? query.kind;
  const others = cols.slice(1);
  if (query.kind === 'variable') {
    // metricFindQuery: one column is text and value
    if (cols.length !== 1) problems.push(`a variable query returns one column, got ${names(cols)}`);
  } else if (query.kind === 'annotation') {
    if (!cols.some((c) => c.name === 'time' && isTime(c))) problems.push('annotations need a time column');
    if (!cols.some((c) => c.name === 'text' && isString(c))) problems.push('annotations need a text column');
  } else if (query.format === 'timeseries') {
    if (cols[0]?.name !== 'time' || !isTime(cols[0])) problems.push(`a time series starts with a DateTime column named time, got ${cols[0]?.name}:${cols[0]?.type}`);
    if (!others.some(isNumeric)) problems.push('a time series needs a numeric column');
    const bad = others.filter((c) => !isNumeric(c) && !isString(c));
    if (bad.length > 0) problems.push(`columns neither numeric nor label: ${names(bad)}`);
    const times = result.rows.map((r) => Date.parse(String(r.time).replace(' ', 'T') + 'Z'));
    if (times.some((t, i) => Number.isNaN(t) || (i > 0 && t < times[i - 1]!))) problems.push('rows are not ordered by time (long-to-wide needs it)');
  } else if (panelType === 'table') {
    const wanted = Object.keys(query.panel.transformations?.find((t: Json) => t.id === 'organize')?.options?.indexByName ?? {});
    if (wanted.length === 0) problems.push('a table lists its columns in an organize transformation');
    if (names(cols).join(',') !== wanted.join(',')) problems.push(`columns ${names(cols)} differ from the table's ${wanted}`);
  } else if (panelType === 'bargauge') {
    if (cols.length !== 2 || !isString(cols[0]!) || !isNumeric(cols[1]!)) problems.push(`a bar gauge takes (name, value), got ${cols.map((c) => `${c.name}:${c.type}`)}`);
  } else if (panelType === 'stat') {
    const fields: string = query.panel.options?.reduceOptions?.fields ?? '';
    if (fields !== '') {
      const pattern = new RegExp(fields.replace(/^\/(.*)\/$/, '$1'));
      if (!cols.some((c) => pattern.test(c.name))) problems.push(`no column matches the stat's fields ${fields}`);
    } else if (!cols.some(isNumeric)) problems.push('a stat needs a numeric column');
    if (result.rows.length > 1) problems.push('a stat reduces one row');
  } else if (panelType === 'state-timeline') {
    if (cols[0]?.name !== 'time' || !isTime(cols[0])) problems.push('a state timeline starts with a time column');
    if (others.length === 0) problems.push('a state timeline needs a state column');
  } else {
    problems.push(`no expectations for panel type ${panelType}`);
  }
  return problems;
}

/** Columns the panel's field config refers to by name, and labels its display names use. */
function referencedColumns(panel: Json): { byName: string[]; labels: string[] } {
  const byName = (panel.fieldConfig?.overrides ?? []).filter((o: Json) => o.matcher?.id === 'byName').map((o: Json) => o.matcher.options as string);
  const displayName: string = panel.fieldConfig?.defaults?.displayName ?? '';
  const labels = [...displayName.matchAll(/\$\{__field\.labels\.(\w+)\}/g)].map((m) => m[1]!);
  return { byName, labels };
}

describe('dashboard queries against seeded ClickHouse', () => {
  for (const dashboard of loadDashboards()) {
    it(`${dashboard.file}: every query runs and returns what its panel needs, and every panel has data`, async () => {
      const queries = dashboardQueries(dashboard);
      const variables: Record<string, VariableValue> = {};
      const loops: { name: string; values: string[] }[] = [];
      for (const variable of dashboard.json.templating.list) {
        if (variable.type === 'custom') variables[variable.name] = variable.current.value;
      }
      // Query variables first: their options are what the panels run with.
      for (const variable of dashboard.json.templating.list.filter((v: Json) => v.type === 'query')) {
        const sql = expandDashboardQuery(variable.query.rawSql, variables, { fromMs: now - 3_600_000, toMs: now, intervalMs: 1000 });
        const options = (await run(sql)).rows.map((r) => String(Object.values(r)[0]));
        expect(options, `variable ${variable.name} has options`).not.toHaveLength(0);
        if (variable.multi) variables[variable.name] = options; // "All", as Grafana expands it
        else loops.push({ name: variable.name, values: options });
      }
      expect(loops.length, 'at most one single-value query variable to iterate').toBeLessThanOrEqual(1);
      const runs = loops[0] ? loops[0].values.map((v) => ({ ...variables, [loops[0]!.name]: v })) : [variables];

      const problems: string[] = [];
      const columnsSeen = new Map<number, Set<string>>();
      const stringColumnsSeen = new Map<number, Set<string>>();
      const nonEmpty = new Set<string>();
      for (const vars of runs) {
        for (const query of queries) {
          // Grafana never computes an interval below the panel's minimum; 10 s is what a 1 h range gets.
          const context = { fromMs: now - 3_600_000, toMs: now, intervalMs: Math.max(query.minIntervalMs, 10_000) };
          const sql = expandDashboardQuery(query.rawSql, vars, context);
          let result: Result;
          try {
            result = await run(sql);
          } catch (err) {
            problems.push(`${query.where} (${JSON.stringify(vars)}): ${(err as Error).message.slice(0, 400)}`);
            continue;
          }
          for (const p of shapeProblems(query, result)) problems.push(`${query.where}: ${p}`);
          if (result.rows.length > 0) nonEmpty.add(query.panel ? `panel ${query.panel.id}` : query.where);
          if (query.panel) {
            const seen = columnsSeen.get(query.panel.id) ?? new Set<string>();
            const strings = stringColumnsSeen.get(query.panel.id) ?? new Set<string>();
            for (const c of result.columns) {
              seen.add(c.name);
              if (isString(c)) strings.add(c.name);
            }
            columnsSeen.set(query.panel.id, seen);
            stringColumnsSeen.set(query.panel.id, strings);
          }
        }
      }
      for (const panel of allPanels(dashboard.json).filter((p) => p.type !== 'row')) {
        const { byName, labels } = referencedColumns(panel);
        for (const name of byName) {
          if (!columnsSeen.get(panel.id)?.has(name)) problems.push(`panel ${panel.id} "${panel.title}": override for ${name}, which no query returns`);
        }
        for (const label of labels) {
          if (!stringColumnsSeen.get(panel.id)?.has(label)) problems.push(`panel ${panel.id} "${panel.title}": display name uses label ${label}, which no query returns`);
        }
        if (!nonEmpty.has(`panel ${panel.id}`)) problems.push(`panel ${panel.id} "${panel.title}" is empty for every ${loops[0]?.name ?? 'run'}`);
      }
      for (const query of queries.filter((q) => q.kind !== 'panel')) {
        if (!nonEmpty.has(query.where)) problems.push(`${query.where} returned nothing`);
      }
      expect(problems).toEqual([]);
    });
  }
});

// What the seeded traffic must make each rule do: instances (label values joined by '/') that fire,
// and some that must not. Every rule needs an entry, so a new rule comes with a seeded case.
const EXPECTED_FIRING: Record<string, { fires: string[]; quiet: string[] }> = {
  'bw-tenant-threshold-50': { fires: [`${TENANTS.healthy}/tokenVelocity60s`], quiet: [`${TENANTS.runaway}/tokenVelocity60s`] },
  'bw-tenant-threshold-90': { fires: [`${TENANTS.runaway}/tokenVelocity60s`], quiet: [`${TENANTS.healthy}/tokenVelocity60s`] },
  // initech's run breaker opened 40 minutes ago and is still open; hooli's opened 3 hours ago and
  // closed since; initech's tenant breaker was forced open and reset
  'bw-breaker-opened': {
    fires: [`${TENANTS.runaway}/TENANT`, `${TENANTS.runaway}/RUN`, `${TENANTS.agents}/RUN`],
    quiet: [`${TENANTS.agents}/TENANT`, `${TENANTS.healthy}/MODEL`, `${RECOVERED_TENANT}/RUN`],
  },
  'bw-tenant-repeated-trips': { fires: [TENANTS.runaway], quiet: [TENANTS.healthy, TENANTS.agents] },
  'bw-audit-integrity': { fires: [TENANTS.agents], quiet: [TENANTS.runaway, TENANTS.healthy] },
  // acme's p95 (about 1.8 s) is over its 1.5 s SLO; globex's 26 s p95 is under its 30 s SLO
  'bw-tenant-latency-slo': { fires: [`${TENANTS.runaway}/${LATENCY_SLO_MS.runaway}`], quiet: [`${TENANTS.healthy}/${LATENCY_SLO_MS.healthy}`] },
  'bw-quota-70': { fires: ['openai/openai-globex'], quiet: ['openai/openai'] },
  'bw-quota-90': { fires: ['openai/openai'], quiet: ['openai/openai-globex'] },
  'bw-provider-5xx': { fires: ['anthropic'], quiet: ['openai'] },
  'bw-ingest-rejections': { fires: ['invalid'], quiet: ['queue_full'] },
  'bw-ingest-queue-filling': { fires: [], quiet: [] },
  'bw-ingest-503': { fires: [], quiet: [] },
  'bw-self-metrics-stale': { fires: [], quiet: [''] },
};

/** Grafana's reduce (last, drop non-numbers) and threshold expressions, as the rule chains them. */
function firingInstances(rule: Json, result: Result): string[] {
  const valueColumn = result.columns.find(isNumeric)!;
  const labelColumns = result.columns.filter(isString);
  const threshold = rule.data.find((d: Json) => d.refId === rule.condition).model;
  const { type, params } = threshold.conditions[0].evaluator as { type: string; params: number[] };
  const [a = 0, b = 0] = params;
  const fires = (v: number) =>
    type === 'gt' ? v > a : type === 'lt' ? v < a : type === 'within_range' ? v > a && v < b : type === 'outside_range' ? v < a || v > b : false;
  return result.rows.filter((row) => fires(Number(row[valueColumn.name]))).map((row) => labelColumns.map((c) => String(row[c.name])).join('/'));
}

function alertProblems({ rule }: AlertRule, rawSql: string, result: Result): string[] {
  const problems: string[] = [];
  if (/\$(?!__)\w|\$\{/.test(rawSql)) problems.push('alert queries get no dashboard variables');
  if (/\$__(interval|timeInterval)/.test(rawSql)) problems.push('alert queries have no meaningful $__interval');
  // Grafana turns a table into alert instances: string columns are labels, exactly one number is the value.
  const numeric = result.columns.filter(isNumeric);
  if (numeric.length !== 1) problems.push(`exactly one numeric column, got ${names(numeric)}`);
  const other = result.columns.filter((c) => !isNumeric(c) && !isString(c));
  if (other.length > 0) problems.push(`columns that are neither labels nor the value: ${names(other)}`);
  const labels = result.columns.filter(isString);
  const keys = result.rows.map((r) => labels.map((c) => String(r[c.name])).join('/'));
  if (new Set(keys).size !== keys.length) problems.push('label sets repeat: Grafana rejects duplicate instances');
  const templates = JSON.stringify(rule.annotations ?? {});
  for (const [, label] of templates.matchAll(/\$labels\.(\w+)/g)) {
    if (!labels.some((c) => c.name === label) && !(label! in (rule.labels ?? {}))) problems.push(`annotations use $labels.${label}, which the query does not return`);
  }
  return problems;
}

/** The instances a rule fires for when Grafana evaluates it at `at`. */
async function evaluate(entry: AlertRule, at: number): Promise<{ result: Result; firing: string[] }> {
  const query = alertQueries(entry)[0]!;
  const sql = expandMacros(query.rawSql, { fromMs: at - query.fromSeconds * 1000, toMs: at - query.toSeconds * 1000, intervalMs: 1000 });
  const result = await run(sql);
  return { result, firing: firingInstances(entry.rule, result) };
}

describe('alert rule queries against seeded ClickHouse', () => {
  const rules = alertRules();

  it('has a seeded expectation for every rule', () => {
    expect(rules.map((r) => r.rule.uid).sort()).toEqual(Object.keys(EXPECTED_FIRING).sort());
  });

  for (const entry of rules) {
    it(`${entry.rule.uid}: runs, returns labels and one value, and fires on the seeded incident`, async () => {
      const queries = alertQueries(entry);
      expect(queries).toHaveLength(1);
      const { result, firing } = await evaluate(entry, now);
      expect(alertProblems(entry, queries[0]!.rawSql, result)).toEqual([]);
      const expected = EXPECTED_FIRING[entry.rule.uid]!;
      for (const instance of expected.fires) expect(firing, `${instance} fires`).toContain(instance);
      for (const instance of expected.quiet) expect(firing, `${instance} stays quiet`).not.toContain(instance);
      if (expected.fires.length === 0) expect(firing).toEqual([]);
    });
  }
});

describe('the breaker alert follows the breaker', () => {
  it('fires while a run breaker opened 40 minutes ago stays open, and resolves once it closes', async () => {
    const entry = alertRules().find((r) => r.rule.uid === 'bw-breaker-opened')!;
    const instance = `${TENANTS.agents}/RUN`;
    expect((await evaluate(entry, now)).firing).toContain(instance);
    await service.core.audit.append({
      tenantId: TENANTS.agents,
      kind: 'breaker_transition',
      eventTime: now,
      scope: 'RUN',
      runId: STUCK_RUN,
      oldState: 'HALF_OPEN',
      newState: 'CLOSED',
      actor: 'breakwater',
      reason: 'probe steps passed',
    });
    expect((await evaluate(entry, now + 1000)).firing).not.toContain(instance);
  });
});

describe('the seeded incidents, as the panels show them', () => {
  async function panelRows(uid: string, panelId: number, refId: string, variables: Record<string, VariableValue>): Promise<Record<string, unknown>[]> {
    const dashboard = loadDashboards().find((d) => d.json.uid === uid)!;
    const query = dashboardQueries(dashboard).find((q) => q.panel?.id === panelId && q.refId === refId)!;
    const context = { fromMs: now - 3_600_000, toMs: now, intervalMs: Math.max(query.minIntervalMs, 10_000) };
    return (await run(expandDashboardQuery(query.rawSql, variables, context))).rows;
  }

  it('Providers: 429s split into request-rate, token-rate and daily', async () => {
    const rows = await panelRows('breakwater-providers', 4, 'A', { provider: ['anthropic', 'openai'] });
    expect(new Set(rows.map((r) => r.class))).toEqual(new Set(['request-rate', 'token-rate', 'daily']));
  });

  it('Providers: 429s and failures counted by ErrorClass, whatever attribute named them', async () => {
    const rows = await panelRows('breakwater-providers', 7, 'A', { provider: ['anthropic', 'openai'] });
    const row = (provider: string, model: string) => rows.find((r) => r.provider === provider && r.model === model);
    // 8 + 5 seeded with status 429, and one with only error.type RateLimitError: none is an error
    expect(row('openai', 'gpt-4o-mini')).toMatchObject({ responses_429: 14, errors: 0 });
    // 20 seeded 5xx, 4 in the burst, and one 529 named only in the status text
    expect(row('anthropic', 'claude-sonnet-4-5')).toMatchObject({ responses_429: 0, responses_5xx: 25, errors: 25 });
  });

  it("Tenant: the runaway tenant's token velocity crossed its threshold line, drawn with its warning level", async () => {
    const policy = service.core.policy.forTenant(TENANTS.runaway);
    const lines = await panelRows('breakwater-tenant', 4, 'B', { tenant: TENANTS.runaway });
    expect(lines.at(-1)).toMatchObject({ threshold: policy.tenant.tokenVelocity60s, warn: policy.tenant.tokenVelocity60s! * policy.warnFraction });
    const timeline = await panelRows('breakwater-tenant', 13, 'A', { tenant: TENANTS.runaway });
    expect(timeline).toContainEqual(expect.objectContaining({ scope: 'TENANT', to_state: 'OPEN', metric: 'tokenVelocity60s', threshold: policy.tenant.tokenVelocity60s }));
  });

  it('Fleet: the runaway tenant tops the trips, and its open breakers are listed with their reasons', async () => {
    const trips = await panelRows('breakwater-fleet', 8, 'A', { top: '10' });
    expect(trips[0]).toMatchObject({ tenant: TENANTS.runaway });
    const open = await panelRows('breakwater-fleet', 4, 'A', { top: '10' });
    expect(open).toContainEqual(expect.objectContaining({ tenant: TENANTS.runaway, scope: 'TENANT', state: 'OPEN', reason: expect.stringContaining('exceeded its threshold') }));
  });

  it('Breakwater: spans received, accepted and rejected come from the snapshots', async () => {
    const instances = (await run('SELECT DISTINCT Instance FROM self_metrics')).rows.map((r) => String(r.Instance));
    const rows = await panelRows('breakwater-self', 1, 'A', { instance: instances });
    expect(new Set(rows.map((r) => r.series))).toEqual(new Set(['received', 'accepted', 'rejected: invalid']));
  });
});
