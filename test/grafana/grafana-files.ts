import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

// Reads the bundled Grafana files the way Grafana's provisioning would, and lists every query in
// them with what it needs to run: the panel or rule it belongs to, its format and time settings.

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DASHBOARDS_DIR = join(REPO_ROOT, 'dashboards');
export const ALERTS_DIR = join(REPO_ROOT, 'alerts');

export const CLICKHOUSE_PLUGIN = 'grafana-clickhouse-datasource';
export const DATASOURCE_VARIABLE = '${datasource}';

export type Json = any;

export interface DashboardFile {
  file: string;
  json: Json;
}

export function loadDashboards(): DashboardFile[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, json: JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) }));
}

/** Every panel, rows' nested panels included (a collapsed row keeps its panels inside it). */
export function allPanels(dashboard: Json): Json[] {
  const out: Json[] = [];
  for (const panel of dashboard.panels ?? []) {
    out.push(panel);
    for (const nested of panel.panels ?? []) out.push(nested);
  }
  return out;
}

export type QueryFormat = 'timeseries' | 'table';

export interface DashboardQuery {
  dashboard: string;
  /** where the query lives, for messages */
  where: string;
  kind: 'panel' | 'variable' | 'annotation';
  panel?: Json;
  refId: string;
  rawSql: string;
  format: QueryFormat;
  /** the panel's minimum interval (Grafana never computes a smaller $__interval), ms */
  minIntervalMs: number;
}

export function dashboardQueries({ file, json }: DashboardFile): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  for (const panel of allPanels(json)) {
    if (panel.type === 'row') continue;
    for (const t of panel.targets ?? []) {
      queries.push({
        dashboard: file,
        where: `panel ${panel.id} "${panel.title}" ${t.refId}`,
        kind: 'panel',
        panel,
        refId: t.refId,
        rawSql: t.rawSql,
        format: t.format === 0 ? 'timeseries' : 'table',
        minIntervalMs: parseInterval(panel.interval ?? '1s'),
      });
    }
  }
  for (const variable of json.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    queries.push({
      dashboard: file,
      where: `variable ${variable.name}`,
      kind: 'variable',
      refId: variable.name,
      rawSql: variable.query?.rawSql,
      format: 'table',
      minIntervalMs: 1000,
    });
  }
  for (const annotation of json.annotations?.list ?? []) {
    if (annotation.builtIn === 1) continue;
    queries.push({
      dashboard: file,
      where: `annotation "${annotation.name}"`,
      kind: 'annotation',
      refId: annotation.target?.refId ?? 'annotation',
      rawSql: annotation.target?.rawSql,
      format: 'table',
      minIntervalMs: 1000,
    });
  }
  return queries;
}

export function parseInterval(text: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!match) throw new Error(`interval ${text} is not understood`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
}

export interface AlertRuleFile {
  file: string;
  json: Json;
}

export function loadAlertFiles(): AlertRuleFile[] {
  return readdirSync(ALERTS_DIR)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((file) => ({ file, json: parseYaml(readFileSync(join(ALERTS_DIR, file), 'utf8')) }));
}

export interface AlertRule {
  file: string;
  group: Json;
  rule: Json;
}

export function alertRules(files = loadAlertFiles()): AlertRule[] {
  return files.flatMap(({ file, json }) => (json.groups ?? []).flatMap((group: Json) => (group.rules ?? []).map((rule: Json) => ({ file, group, rule }))));
}

export interface AlertQuery {
  rule: string;
  refId: string;
  rawSql: string;
  /** seconds before now: relativeTimeRange */
  fromSeconds: number;
  toSeconds: number;
}

/** The data-source (not expression) queries of a rule. */
export function alertQueries({ rule }: AlertRule): AlertQuery[] {
  return (rule.data ?? [])
    .filter((d: Json) => d.datasourceUid !== '__expr__')
    .map((d: Json) => ({
      rule: rule.uid,
      refId: d.refId,
      rawSql: d.model?.rawSql,
      fromSeconds: d.relativeTimeRange?.from,
      toSeconds: d.relativeTimeRange?.to,
    }));
}
