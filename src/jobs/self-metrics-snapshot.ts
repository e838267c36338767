import { hostname } from 'node:os';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Registry } from 'prom-client';
import type { DegradationSection } from '../degradation/degradation-schema.js';
import type { Job } from './scheduler.js';
import { tenantLatencySloRows } from './tenant-latency-slo-rows.js';

// Breakwater's Prometheus registry, copied into ClickHouse (table self_metrics, migration 004) so the
// bundled Grafana dashboards and alert rules need nothing but the ClickHouse data source.
//
// Counters are stored twice: Value (the running total) and Delta (the increase since this process's
// previous snapshot). Rates are then sum(Delta) over a time range, which stays right across process
// restarts, across several replicas, and for labelled series that appear mid-range (their first
// Delta is their whole value: they were 0 before), none of which a difference of Values gets right.

export const SELF_METRICS_TABLE = 'self_metrics';

/** One stored row. */
export interface SelfMetricRow {
  /** 'YYYY-MM-DD hh:mm:ss.sss' in UTC */
  Time: string;
  Instance: string;
  Name: string;
  /** counter | gauge | histogram | summary (a histogram's _bucket, _sum and _count rows are 'histogram') */
  Kind: string;
  Labels: Record<string, string>;
  Value: number;
  Delta: number;
}

/** What the per-tenant threshold rows read: Core's `windows` and `policy` fit as they are. */
export interface TenantThresholdSources {
  windows: {
    tenants(): Iterable<string>;
    tenantMetrics(tenantId: string): Readonly<Record<string, number>> | undefined;
  };
  policy: {
    forTenant(tenantId: string): { tenant: Readonly<Partial<Record<string, number>>>; warnFraction: number };
    /** the document in force (a PolicyStore has it): also write each active tenant's latency SLO */
    current?(): { degradation: DegradationSection };
  };
  /** write a row only for a tenant metric at or above this fraction of its threshold (default 0.25) */
  minRatio?: number;
  /** at most this many tenant rows per snapshot, the nearest to their thresholds first (default 5000) */
  maxRows?: number;
}

export interface SelfMetricsSnapshotOptions {
  /** names this process's rows; default the host name (a container's id under Docker) */
  instance?: string;
  /** default self_metrics */
  table?: string;
  /** also write breakwater_tenant_threshold_ratio rows for tenants near their tenant-wide thresholds */
  tenantThresholds?: TenantThresholdSources;
  now?: () => number;
}

/** Name of the per-tenant rows: Value = the live tenant metric / its threshold. */
export const TENANT_THRESHOLD_RATIO = 'breakwater_tenant_threshold_ratio';

const DEFAULT_MIN_RATIO = 0.25;
const DEFAULT_MAX_TENANT_ROWS = 5000;

/**
 * Takes snapshots of one registry. Keep one instance per registry for the life of the process: it
 * remembers the previous counter values to compute each row's Delta.
 */
export class SelfMetricsSnapshotter {
  readonly #instance: string;
  readonly #table: string;
  readonly #now: () => number;
  /** counter-like series key -> value at the previous snapshot */
  #previous = new Map<string, number>();

  constructor(
    private readonly registry: Registry,
    private readonly client: ClickHouseClient,
    private readonly options: SelfMetricsSnapshotOptions = {},
  ) {
    this.#instance = options.instance ?? hostname();
    this.#table = options.table ?? SELF_METRICS_TABLE;
    this.#now = options.now ?? Date.now;
  }

  /** The rows of one snapshot, without writing them (and without advancing the Delta baseline). */
  async rows(): Promise<SelfMetricRow[]> {
    return (await this.#collect()).rows;
  }

  /** Writes one snapshot; resolves with the number of rows inserted. */
  async snapshot(): Promise<number> {
    const { rows, next } = await this.#collect();
    if (rows.length > 0) await this.client.insert({ table: this.#table, values: rows, format: 'JSONEachRow' });
    // Only a stored snapshot becomes the baseline: a failed insert's increase is counted next time.
    this.#previous = next;
    return rows.length;
  }

  async #collect(): Promise<{ rows: SelfMetricRow[]; next: Map<string, number> }> {
    const timeMs = this.#now();
    const time = clickhouseTime(timeMs);
    const rows: SelfMetricRow[] = [];
    const next = new Map<string, number>();
    for (const metric of await this.registry.getMetricsAsJSON()) {
      const kind = String(metric.type);
      for (const sample of metric.values) {
        const value = Number(sample.value);
        if (!Number.isFinite(value)) continue;
        const name = (sample as { metricName?: string }).metricName ?? metric.name;
        const labels = stringLabels(sample.labels);
        let delta = 0;
        if (isCumulative(kind, name, metric.name)) {
          const key = seriesKey(name, labels);
          const before = this.#previous.get(key);
          // A series not seen before was 0 then; a total below the last one was reset.
          delta = before === undefined || value < before ? value : value - before;
          next.set(key, value);
        }
        rows.push({ Time: time, Instance: this.#instance, Name: name, Kind: kind, Labels: labels, Value: value, Delta: delta });
      }
    }
    const tenants = this.options.tenantThresholds;
    if (tenants) {
      rows.push(...tenantThresholdRows(tenants, time, this.#instance));
      const { policy } = tenants;
      if (policy.current) {
        const degradation = () => policy.current!().degradation;
        rows.push(...tenantLatencySloRows({ windows: tenants.windows, degradation, maxRows: tenants.maxRows ?? DEFAULT_MAX_TENANT_ROWS }, time, this.#instance));
      }
    }
    return { rows, next };
  }
}

/** One snapshot of `registry` into `client` (Delta counts from process start: use a SelfMetricsSnapshotter to repeat). */
export function snapshotSelfMetrics(registry: Registry, client: ClickHouseClient, options: SelfMetricsSnapshotOptions = {}): Promise<number> {
  return new SelfMetricsSnapshotter(registry, client, options).snapshot();
}

/** The scheduler job: every 10 s by default (node-cron with seconds). */
export function selfMetricsSnapshotJob(snapshotter: SelfMetricsSnapshotter, schedule = '*/10 * * * * *'): Job {
  return { name: 'self-metrics-snapshot', schedule, run: () => snapshotter.snapshot() };
}

/**
 * For each active tenant and each tenant-wide metric with a threshold: the live value over the
 * threshold, when at least `minRatio`. Warnings are not audited, so this is what the "near its
 * threshold" alerts and the dashboards' threshold lines read; the threshold and warn fraction ride
 * along as labels because they are per tenant (tier plus overrides) and change at run time.
 */
export function tenantThresholdRows(sources: TenantThresholdSources, time: string, instance: string): SelfMetricRow[] {
  const minRatio = sources.minRatio ?? DEFAULT_MIN_RATIO;
  const maxRows = sources.maxRows ?? DEFAULT_MAX_TENANT_ROWS;
  const rows: SelfMetricRow[] = [];
  for (const tenantId of sources.windows.tenants()) {
    const metrics = sources.windows.tenantMetrics(tenantId);
    if (!metrics) continue;
    const policy = sources.policy.forTenant(tenantId);
    for (const [metric, threshold] of Object.entries(policy.tenant)) {
      const observed = metrics[metric];
      if (threshold === undefined || !(threshold > 0) || observed === undefined || !Number.isFinite(observed)) continue;
      const ratio = observed / threshold;
      if (ratio < minRatio) continue;
      rows.push({
        Time: time,
        Instance: instance,
        Name: TENANT_THRESHOLD_RATIO,
        Kind: 'gauge',
        Labels: { tenant: tenantId, metric, scope: 'TENANT', threshold: String(threshold), warn_fraction: String(policy.warnFraction) },
        Value: ratio,
        Delta: 0,
      });
    }
  }
  if (rows.length > maxRows) rows.sort((a, b) => b.Value - a.Value).length = maxRows;
  return rows;
}

function isCumulative(kind: string, sampleName: string, metricName: string): boolean {
  if (kind === 'counter' || kind === 'histogram') return true;
  // A summary's quantiles are readings; its _sum and _count are running totals.
  return kind === 'summary' && (sampleName === `${metricName}_sum` || sampleName === `${metricName}_count`);
}

function stringLabels(labels: Partial<Record<string, string | number>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels ?? {})) if (value !== undefined) out[key] = String(value);
  return out;
}

function seriesKey(name: string, labels: Record<string, string>): string {
  return JSON.stringify([name, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}

/** 'YYYY-MM-DD hh:mm:ss.sss' in UTC: what a DateTime64(3, 'UTC') column parses without settings. */
function clickhouseTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}
