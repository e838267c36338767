import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { resolveAuthConfig } from '../../src/api/secrets.js';
import { SETTINGS } from '../../src/app/config.js';
import { loadPolicyFile } from '../../src/policy/load-policy.js';
import { readMigrations } from '../../src/storage/migrations.js';
import { bindMounts, composeDocProblems, dockerfileCmd, hostVariables, interpolate, interpolateValues, portBinding, publishedPorts } from './compose.js';
import {
  alertRules, allPanels, CLICKHOUSE_PLUGIN, DATASOURCE_VARIABLE, loadAlertFiles, loadDashboards, parseInterval, REPO_ROOT, type Json,
} from './grafana-files.js';

// What Grafana's provisioning and docker compose would check (or trip over) in the bundled files,
// without running either.

const dashboards = loadDashboards();
const DATASOURCE_UID = 'breakwater-clickhouse';
const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');

/** Every `datasource` reference anywhere in a JSON document. */
function datasourceRefs(node: Json, path = '$'): { path: string; ref: Json }[] {
  if (node === null || typeof node !== 'object') return [];
  const out: { path: string; ref: Json }[] = [];
  for (const [key, value] of Object.entries<Json>(node)) {
    if (key === 'datasource' && value !== null && typeof value === 'object') out.push({ path: `${path}.${key}`, ref: value });
    out.push(...datasourceRefs(value, `${path}.${key}`));
  }
  return out;
}

describe('dashboards', () => {
  it('are the four the issue asks for, with unique uids and titles', () => {
    expect(dashboards.map((d) => d.json.uid).sort()).toEqual(['breakwater-fleet', 'breakwater-providers', 'breakwater-self', 'breakwater-tenant']);
    expect(new Set(dashboards.map((d) => d.json.title)).size).toBe(dashboards.length);
  });

  for (const { file, json } of dashboards) {
    describe(file, () => {
      it('has a schema version, a time range, and no id (Grafana assigns it)', () => {
        expect(json.schemaVersion).toBeGreaterThanOrEqual(36);
        expect(json.time).toMatchObject({ from: expect.any(String), to: expect.any(String) });
        expect(json.id ?? null).toBeNull();
      });

      it('has unique panel ids and panels inside the 24-column grid', () => {
        const ids = allPanels(json).map((p) => p.id);
        expect(ids.every((id) => Number.isInteger(id))).toBe(true);
        expect(new Set(ids).size).toBe(ids.length);
        for (const panel of allPanels(json)) {
          expect(panel.gridPos.x + panel.gridPos.w, `panel ${panel.id}`).toBeLessThanOrEqual(24);
          expect(panel.gridPos.h, `panel ${panel.id}`).toBeGreaterThan(0);
        }
      });

      it('has a datasource variable of the ClickHouse plugin, and every query uses it (no hard-coded uid)', () => {
        const variable = json.templating.list.find((v: Json) => v.name === 'datasource');
        expect(variable).toMatchObject({ type: 'datasource', query: CLICKHOUSE_PLUGIN });
        for (const { path, ref } of datasourceRefs(json)) {
          if (ref.type === 'grafana') {
            expect(ref.uid, path).toBe('-- Grafana --'); // the built-in annotations
            continue;
          }
          expect(ref, path).toEqual({ type: CLICKHOUSE_PLUGIN, uid: DATASOURCE_VARIABLE });
        }
        for (const panel of allPanels(json).filter((p) => p.type !== 'row')) {
          expect(panel.datasource, `panel ${panel.id}`).toEqual({ type: CLICKHOUSE_PLUGIN, uid: DATASOURCE_VARIABLE });
          expect(panel.targets?.length, `panel ${panel.id} has queries`).toBeGreaterThan(0);
        }
      });

      it('has SQL editor queries whose format matches their query type and whose refIds are unique per panel', () => {
        for (const panel of allPanels(json).filter((p) => p.type !== 'row')) {
          const refIds = panel.targets.map((t: Json) => t.refId);
          expect(new Set(refIds).size, `panel ${panel.id}`).toBe(refIds.length);
          for (const target of panel.targets) {
            expect(target.editorType, `panel ${panel.id}`).toBe('sql');
            expect(typeof target.rawSql === 'string' && target.rawSql.trim() !== '', `panel ${panel.id}`).toBe(true);
            expect([target.queryType, target.format], `panel ${panel.id}`).toEqual(target.format === 0 ? ['timeseries', 0] : ['table', 1]);
          }
          if (panel.interval !== undefined) expect(() => parseInterval(panel.interval)).not.toThrow();
          expect(['timeseries', 'stat', 'bargauge', 'table', 'state-timeline']).toContain(panel.type);
        }
      });

      it('links only to dashboards that exist', () => {
        const uids = new Set(dashboards.map((d) => d.json.uid));
        for (const [, uid] of JSON.stringify(json).matchAll(/\/d\/([\w-]+)/g)) expect(uids).toContain(uid);
      });
    });
  }
});

describe('alert rules', () => {
  const files = loadAlertFiles();
  const rules = alertRules(files);
  const expressionTypes = ['reduce', 'threshold', 'math', 'resample', 'classic_conditions'];
  const evaluators = ['gt', 'lt', 'within_range', 'outside_range'];

  it('are provisioning files of apiVersion 1 with groups that have an org, name, folder and interval', () => {
    expect(files.length).toBeGreaterThan(0);
    for (const { file, json } of files) {
      expect(json.apiVersion, file).toBe(1);
      for (const group of json.groups) {
        expect(group, file).toMatchObject({ orgId: 1, name: expect.any(String), folder: expect.any(String), interval: expect.stringMatching(/^\d+[smh]$/) });
        expect(group.rules.length).toBeGreaterThan(0);
      }
    }
  });

  it('cover what the issue asks for', () => {
    expect(rules.map((r) => r.rule.uid).sort()).toEqual(
      [
        'bw-audit-integrity', 'bw-breaker-opened', 'bw-ingest-503', 'bw-ingest-queue-filling', 'bw-ingest-rejections', 'bw-provider-5xx', 'bw-quota-70', 'bw-quota-90',
        'bw-self-metrics-stale', 'bw-tenant-latency-slo', 'bw-tenant-repeated-trips', 'bw-tenant-threshold-50', 'bw-tenant-threshold-90',
      ].sort(),
    );
  });

  it('have unique uids (Grafana: at most 40 letters, digits, - and _) and unique titles per folder', () => {
    const uids = rules.map((r) => r.rule.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const uid of uids) expect(uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    const titles = rules.map((r) => `${r.group.folder}/${r.rule.title}`);
    expect(new Set(titles).size).toBe(titles.length);
  });

  for (const { rule } of rules) {
    it(`${rule.uid} has the fields Grafana requires, a working condition chain, labels and annotations`, () => {
      expect(rule).toMatchObject({ uid: expect.any(String), title: expect.any(String), condition: expect.any(String), for: expect.stringMatching(/^\d+[smh]$/) });
      expect(['OK', 'NoData', 'Alerting', 'KeepLast']).toContain(rule.noDataState);
      expect(['OK', 'Error', 'Alerting', 'KeepLast']).toContain(rule.execErrState);
      const refIds = rule.data.map((d: Json) => d.refId);
      expect(new Set(refIds).size).toBe(refIds.length);
      expect(refIds).toContain(rule.condition);
      for (const d of rule.data) {
        expect(d.model?.refId, `${rule.uid} ${d.refId}`).toBe(d.refId);
        expect(d.relativeTimeRange, `${rule.uid} ${d.refId}`).toMatchObject({ from: expect.any(Number), to: expect.any(Number) });
        if (d.datasourceUid === '__expr__') {
          expect(expressionTypes).toContain(d.model.type);
          expect(refIds, `${rule.uid} ${d.refId} reads an existing query`).toContain(d.model.expression);
          if (d.model.type === 'threshold') {
            for (const c of d.model.conditions) {
              expect(evaluators).toContain(c.evaluator.type);
              expect(c.evaluator.params.length).toBe(c.evaluator.type.endsWith('range') ? 2 : 1);
            }
          }
        } else {
          expect(d.datasourceUid, `${rule.uid}: the provisioned ClickHouse data source`).toBe(DATASOURCE_UID);
          expect(d.model.datasource).toEqual({ type: CLICKHOUSE_PLUGIN, uid: DATASOURCE_UID });
          expect(d.model).toMatchObject({ editorType: 'sql', format: 1, queryType: 'table', rawSql: expect.any(String) });
          expect(d.relativeTimeRange.from).toBeGreaterThan(d.relativeTimeRange.to);
        }
      }
      expect(['info', 'warning', 'critical']).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.uid).toEqual(expect.any(String));
      expect(String(rule.annotations?.description ?? '').length, `${rule.uid} has a short description`).toBeGreaterThan(20);
      // Grafana's standard annotation, a literal URL: provisioning does not expand variables in annotations
      expect(rule.annotations?.runbook_url, rule.uid).toBe(`http://localhost:4000/runbooks#${rule.uid}`);
      expect(rule.annotations, `${rule.uid}: the runbook text lives in docs/runbooks.md`).not.toHaveProperty('runbook');
    });
  }

  it('each have a runbook section in docs/runbooks.md, headed by the uid', () => {
    const runbooks = read('docs/runbooks.md');
    const sections = new Map(runbooks.split(/^## /m).slice(1).map((section) => [section.split('\n')[0]!.trim(), section] as const));
    expect([...sections.keys()].sort()).toEqual(rules.map((r) => r.rule.uid).sort());
    for (const { rule } of rules) expect(sections.get(rule.uid)!.length, `${rule.uid}: what to do`).toBeGreaterThan(200);
  });

  it('link to dashboard panels that exist', () => {
    for (const { rule } of rules) {
      const dashboard = dashboards.find((d) => d.json.uid === rule.dashboardUid);
      expect(dashboard, `${rule.uid} -> ${rule.dashboardUid}`).toBeDefined();
      expect(allPanels(dashboard!.json).map((p) => p.id), `${rule.uid} -> panel ${rule.panelId}`).toContain(rule.panelId);
    }
  });

  it('label tenant-level rules by tenant', () => {
    for (const { rule } of rules.filter((r) => r.group.name === 'breakwater-tenants')) {
      expect(rule.data[0].model.rawSql, rule.uid).toMatch(/\bAS tenant\b/);
    }
  });
});

describe('Grafana provisioning', () => {
  it('provisions the ClickHouse data source with the uid the alert rules use', () => {
    const file = parseYaml(read('deploy/grafana/provisioning/datasources/clickhouse.yaml'));
    expect(file.apiVersion).toBe(1);
    expect(file.datasources).toHaveLength(1);
    expect(file.datasources[0]).toMatchObject({
      uid: DATASOURCE_UID,
      type: CLICKHOUSE_PLUGIN,
      jsonData: { host: 'clickhouse', port: 8123, protocol: 'http', defaultDatabase: 'breakwater', username: 'grafana' },
      secureJsonData: { password: '${GRAFANA_CLICKHOUSE_PASSWORD}' },
    });
  });

  it('loads the dashboards from where docker compose mounts them', () => {
    const file = parseYaml(read('deploy/grafana/provisioning/dashboards/breakwater.yaml'));
    const compose = parseYaml(read('docker-compose.yml'));
    expect(file.apiVersion).toBe(1);
    const path = file.providers[0].options.path;
    expect(compose.services.grafana.volumes).toContain(`./dashboards:${path}:ro`);
    const home: string = compose.services.grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    expect(home.startsWith(`${path}/`)).toBe(true);
    expect(existsSync(join(REPO_ROOT, 'dashboards', home.slice(path.length + 1))), home).toBe(true);
  });
});

describe('docker-compose.yml', () => {
  const text = read('docker-compose.yml');
  const compose = parseYaml(text);
  const { clickhouse, breakwater, grafana } = compose.services;

  it('parses and has ClickHouse, Breakwater and Grafana', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['breakwater', 'clickhouse', 'grafana']);
  });

  it('pins every image to a release', () => {
    expect(clickhouse.image).toMatch(/^clickhouse\/clickhouse-server:\d+\.\d+\.\d+\.\d+$/);
    expect(grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(breakwater.build).toMatchObject({ context: '.', dockerfile: 'Dockerfile' });
    expect(grafana.environment.GF_PLUGINS_PREINSTALL_SYNC).toMatch(new RegExp(`^${CLICKHOUSE_PLUGIN}@\\d+\\.\\d+\\.\\d+$`));
  });

  it('mounts only files and directories that exist', () => {
    const mounts = Object.values<Json>(compose.services).flatMap(bindMounts);
    expect(mounts.length).toBeGreaterThanOrEqual(6);
    for (const source of mounts) expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
    expect(statSync(join(REPO_ROOT, 'deploy/clickhouse/initdb/10-grafana-reader.sh')).mode & 0o111, 'init script is executable').not.toBe(0);
  });

  it('mounts the provisioning files where Grafana reads them, and declares its named volumes', () => {
    expect(grafana.volumes).toEqual(
      expect.arrayContaining([
        './deploy/grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro',
        './deploy/grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro',
        './alerts:/etc/grafana/provisioning/alerting:ro',
      ]),
    );
    const named = Object.values<Json>(compose.services)
      .flatMap((s) => (s.volumes ?? []) as string[])
      .map((v) => v.split(':')[0]!)
      .filter((v) => !v.startsWith('.'));
    for (const volume of named) expect(Object.keys(compose.volumes), volume).toContain(volume);
  });

  it('publishes the ports DESIGN.md names: OTLP 4318, API 4000, Grafana 3000, ClickHouse HTTP 8123', () => {
    expect(publishedPorts(breakwater).sort()).toEqual([4000, 4318]);
    expect(publishedPorts(grafana)).toEqual([3000]);
    expect(publishedPorts(clickhouse)).toEqual([8123]);
    expect(breakwater.environment).toMatchObject({ BREAKWATER_OTLP_PORT: '4318', BREAKWATER_GRAPHQL_PORT: '4000' });
  });

  it('has a health check on every service, and starts services after their dependencies are healthy', () => {
    expect(clickhouse.healthcheck.test.join(' ')).toContain('http://127.0.0.1:8123/ping');
    expect(breakwater.healthcheck.test.join(' ')).toContain('http://127.0.0.1:4000/readyz');
    expect(grafana.healthcheck.test.join(' ')).toContain('/api/health');
    expect(breakwater.depends_on).toEqual({ clickhouse: { condition: 'service_healthy' } });
  });

  it('starts Grafana on ClickHouse alone: its dashboards are needed most when Breakwater is down', () => {
    expect(grafana.depends_on).toEqual({ clickhouse: { condition: 'service_healthy' } });
  });

  it("runs the Dockerfile's command, Node flags included", () => {
    expect(breakwater.command).toEqual(dockerfileCmd(read('Dockerfile')));
    expect(breakwater.command).toEqual(expect.arrayContaining(['--max-semi-space-size=64', '--no-memory-reducer']));
  });

  it('runs Breakwater on 0.0.0.0 against the ClickHouse service, with settings Breakwater knows', () => {
    expect(breakwater.command.slice(-4)).toEqual(['dist/cli.js', 'serve', '--host', '0.0.0.0']);
    expect(breakwater.environment.CLICKHOUSE_URL).toBe('http://clickhouse:8123');
    expect(breakwater.environment.CLICKHOUSE_DATABASE).toBe(clickhouse.environment.CLICKHOUSE_DB);
    expect(breakwater.environment.CLICKHOUSE_USER).toBe(clickhouse.environment.CLICKHOUSE_USER);
    const known = new Set(SETTINGS.map((s) => s.env));
    const policy = read('deploy/breakwater/breakwater.yaml');
    for (const name of Object.keys(breakwater.environment)) {
      expect(known.has(name) || policy.includes(`env: ${name}`), `${name} is a Breakwater setting or read by its policy file`).toBe(true);
    }
    const configMount = breakwater.volumes.find((v: string) => v.startsWith('./deploy/breakwater/breakwater.yaml:'));
    expect(configMount.split(':')[1]).toBe(breakwater.environment.BREAKWATER_CONFIG);
  });

  it('takes the admin token from the environment instead of shipping one', () => {
    expect(breakwater.environment.BREAKWATER_ADMIN_TOKEN).toBe('${BREAKWATER_ADMIN_TOKEN:-}');
    expect(hostVariables(text)).toContain('BREAKWATER_ADMIN_TOKEN');
  });

  it('interpolates in a new shell with nothing exported, so down, ps and logs work (compose reads the whole file for each)', () => {
    const interpolated = interpolateValues(compose, {});
    expect(interpolated.services.breakwater.environment.BREAKWATER_ADMIN_TOKEN).toBe('');
    expect(interpolated.services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD).toBe('admin');
  });

  it('publishes OTLP on loopback unless told otherwise, as the bundled policy has no ingest keys', async () => {
    const otlp = (breakwater.ports as string[]).find((p) => p.endsWith(':4318'))!;
    expect(portBinding(interpolate(otlp, {}))).toEqual({ host: '127.0.0.1', published: 4318, target: 4318 });
    expect(portBinding(interpolate(otlp, { BREAKWATER_OTLP_BIND: '0.0.0.0' }))).toEqual({ host: '0.0.0.0', published: 4318, target: 4318 });
    const document = await loadPolicyFile(join(REPO_ROOT, 'deploy/breakwater/breakwater.yaml'), { explicit: true });
    const keys = Object.values(document.auth.tenants).flatMap((t) => t.ingestKeys);
    expect(keys, 'with ingest keys in the bundled policy, a wider default could be argued').toEqual([]);
    // the API needs a token for everything but /healthz, /readyz, /metrics and /runbooks
    expect(portBinding(interpolate((breakwater.ports as string[]).find((p) => p.endsWith(':4000'))!, {})).published).toBe(4000);
  });

  it('comes with a .env.example to copy to .env (git-ignored) naming every variable it reads', () => {
    const example = read('.env.example');
    const assigned = [...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    expect(assigned.sort()).toEqual(hostVariables(text));
    expect(example).toMatch(/^BREAKWATER_ADMIN_TOKEN=$/m); // a secret is never shipped, not even an example one
    expect(example).toMatch(/^BREAKWATER_OTLP_BIND=127\.0\.0\.1$/m);
    expect(read('.gitignore').split('\n')).toContain('.env');
    expect(read('.dockerignore').split('\n')).toContain('.env');
  });

  it('is documented in docs/compose.md: ports, images and variables, its settings there or in docs/configuration.md', () => {
    expect(composeDocProblems(read('docs/compose.md'), compose, text, read('docs/configuration.md'))).toEqual([]);
  });
});

describe('Breakwater image and policy', () => {
  it('builds on the Node.js the npm scripts run on, with npm install and npm run build, and serves on 0.0.0.0', () => {
    const dockerfile = read('Dockerfile');
    // the major of the `node` dev dependency, which every npm script runs on
    const major = (JSON.parse(read('package.json')) as { devDependencies: Record<string, string> }).devDependencies.node!.split('.')[0];
    expect(major).toBe('24');
    expect(dockerfile).toMatch(new RegExp(`^FROM node:${major}-slim AS build$`, 'm'));
    expect(dockerfile).toMatch(new RegExp(`^FROM node:${major}-slim$`, 'm'));
    expect(dockerfile).toMatch(/^RUN npm install --no-audit --no-fund$/m);
    expect(dockerfile).toMatch(/npm run build/);
    expect(dockerfile).toMatch(/^COPY schema \.\/schema$/m);
    expect(dockerfile, 'GET /runbooks reads it').toMatch(/^COPY docs\/runbooks\.md \.\/docs\/runbooks\.md$/m);
    expect(dockerfile).toMatch(/^CMD \["node", "--max-semi-space-size=64", "--no-memory-reducer", "dist\/cli\.js", "serve", "--host", "0\.0\.0\.0"\]$/m);
    expect(dockerfile).toMatch(/^EXPOSE 4318 4000$/m);
    const ignored = read('.dockerignore').split('\n');
    for (const path of ['node_modules', 'dist', 'data', '.git']) expect(ignored).toContain(path);
  });

  it('loads the compose policy file with the real loader, the admin token read from the environment', async () => {
    const document = await loadPolicyFile(join(REPO_ROOT, 'deploy/breakwater/breakwater.yaml'), { explicit: true });
    const auth = resolveAuthConfig(document.auth, { BREAKWATER_ADMIN_TOKEN: 'a-token-of-sufficient-length' });
    expect(auth.adminTokens).toEqual(['a-token-of-sufficient-length']);
    expect(() => resolveAuthConfig(document.auth, {})).toThrow(/BREAKWATER_ADMIN_TOKEN/);
  });

  it('ships the self_metrics migration the dashboards read', () => {
    const migration = readMigrations().find((m) => m.name === 'self_metrics');
    expect(migration?.statements.join('\n')).toMatch(/CREATE TABLE IF NOT EXISTS self_metrics/);
  });
});
