import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SelfMetricsSnapshotter, selfMetricsSnapshotJob, TENANT_THRESHOLD_RATIO, tenantThresholdRows } from '../../src/jobs/self-metrics-snapshot.js';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { TENANT_LATENCY_SLO, tenantLatencySloRows } from '../../src/jobs/tenant-latency-slo-rows.js';
import { startTestService, tempDataDir } from '../helpers/service.js';

// The snapshot job against a running service's own registry and embedded ClickHouse.

let service: Service;
// Recent, whole-second times: rows older than the table's 30-day TTL would be dropped on the spot.
const start = Math.floor(Date.now() / 1000) * 1000 - 600_000;
let clock = start;
/** how ClickHouse prints the DateTime64(3) `seconds` after the start */
const at = (seconds: number) => new Date(start + seconds * 1000).toISOString().replace('T', ' ').replace('Z', '');

beforeAll(async () => {
  service = await startTestService({ dataDir: tempDataDir() });
});

afterAll(async () => {
  await service?.stop();
});

interface StoredRow {
  Time: string;
  Instance: string;
  Name: string;
  Kind: string;
  Labels: Record<string, string>;
  Value: number;
  Delta: number;
}

async function stored(instance: string, name: string): Promise<StoredRow[]> {
  return queryRows<StoredRow>(
    service.store.client,
    `SELECT toString(Time) AS Time, Instance, Name, Kind, Labels, Value, Delta FROM self_metrics
     WHERE Instance = {instance:String} AND Name = {name:String} ORDER BY Time, toString(Labels)`,
    { instance, name },
  );
}

function snapshotter(instance: string): SelfMetricsSnapshotter {
  return new SelfMetricsSnapshotter(service.metrics.registry, service.store.client, { instance, now: () => clock });
}

describe('self-metrics snapshot', () => {
  it('stores every series of the registry, counters with their increase since the previous snapshot', async () => {
    const metrics = service.metrics;
    const snap = snapshotter('counters');
    const acceptedBefore = (await metrics.spansAccepted.get()).values[0]?.value ?? 0;

    const first = await snap.snapshot();
    expect(first).toBeGreaterThan(20); // Breakwater's metrics and the process metrics

    metrics.spansAccepted.inc(7);
    // a labelled series that did not exist at the previous snapshot: it was 0 then
    metrics.spansRejected.inc({ reason: 'snapshot_test' }, 3);
    metrics.queueDepth.set(42);
    clock += 10_000;
    await snap.snapshot();

    const accepted = await stored('counters', 'breakwater_spans_accepted_total');
    expect(accepted.map((r) => [r.Time, r.Kind, r.Value, r.Delta])).toEqual([
      [at(0), 'counter', acceptedBefore, acceptedBefore],
      [at(10), 'counter', acceptedBefore + 7, 7],
    ]);
    const rejected = (await stored('counters', 'breakwater_spans_rejected_total')).filter((r) => r.Labels.reason === 'snapshot_test');
    expect(rejected.map((r) => [r.Time, r.Value, r.Delta])).toEqual([[at(10), 3, 3]]);
    const queue = await stored('counters', 'breakwater_write_queue_spans');
    expect(queue.at(-1)).toMatchObject({ Kind: 'gauge', Value: 42, Delta: 0 });
  });

  it('stores histograms as _bucket (le), _sum and _count series whose deltas add up', async () => {
    const snap = snapshotter('histogram');
    await snap.snapshot();
    service.metrics.flushSeconds.observe(0.02);
    service.metrics.flushSeconds.observe(0.3);
    clock += 10_000;
    await snap.snapshot();

    const buckets = (await stored('histogram', 'breakwater_flush_duration_seconds_bucket')).filter((r) => r.Time === at(20));
    const delta = (le: string) => buckets.find((r) => r.Labels.le === le)?.Delta;
    expect(delta('0.01')).toBe(0);
    expect(delta('0.025')).toBe(1);
    expect(delta('0.5')).toBe(2);
    expect(delta('+Inf')).toBe(2);
    const count = await stored('histogram', 'breakwater_flush_duration_seconds_count');
    expect(count.at(-1)).toMatchObject({ Kind: 'histogram', Delta: 2 });
    const sum = await stored('histogram', 'breakwater_flush_duration_seconds_sum');
    expect(sum.at(-1)?.Delta).toBeCloseTo(0.32, 9);
  });

  it('counts a counter that went down (a reset) from zero, and keeps the increase of a failed insert for the next snapshot', async () => {
    const snap = snapshotter('reset');
    await snap.snapshot();
    service.metrics.flushFailures.reset();
    service.metrics.flushFailures.inc(2);
    clock += 10_000;
    await snap.snapshot();
    const failures = await stored('reset', 'breakwater_flush_failures_total');
    expect(failures.at(-1)).toMatchObject({ Value: 2, Delta: 2 });

    const failing = new SelfMetricsSnapshotter(service.metrics.registry, service.store.client, { instance: 'reset', table: 'no_such_table', now: () => clock });
    await expect(failing.snapshot()).rejects.toThrow();
  });

  it('writes the tenants near their thresholds, with the threshold and warn fraction they are measured against', async () => {
    const windows = {
      tenants: () => ['near', 'far', 'gone'],
      tenantMetrics: (tenantId: string): Record<string, number> | undefined =>
        tenantId === 'near' ? { tokenVelocity60s: 1800, toolCallsPerMinute: 10, errorRatio: 0.3 } : tenantId === 'far' ? { tokenVelocity60s: 100 } : undefined,
    };
    const policy = {
      forTenant: (tenantId: string) => ({
        tenant: tenantId === 'near' ? { tokenVelocity60s: 2000, toolCallsPerMinute: 120, errorRatio: 0.5, costPerMinuteUsd: undefined } : { tokenVelocity60s: 2000 },
        warnFraction: 0.8,
      }),
    };
    const snap = new SelfMetricsSnapshotter(service.metrics.registry, service.store.client, {
      instance: 'tenants',
      now: () => clock,
      tenantThresholds: { windows, policy },
    });
    await snap.snapshot();
    const rows = await stored('tenants', TENANT_THRESHOLD_RATIO);
    expect(rows.map((r) => [r.Labels.tenant, r.Labels.metric, r.Value, r.Labels.threshold, r.Labels.warn_fraction])).toEqual([
      ['near', 'errorRatio', 0.6, '0.5', '0.8'],
      ['near', 'tokenVelocity60s', 0.9, '2000', '0.8'],
    ]);

    const capped = tenantThresholdRows({ windows, policy, minRatio: 0, maxRows: 1 }, at(0), 'x');
    expect(capped.map((r) => r.Labels.metric)).toEqual(['tokenVelocity60s']);
  });

  it('reads the running service\'s own windows and policy, as Core hands them over', async () => {
    const snap = new SelfMetricsSnapshotter(service.metrics.registry, service.store.client, {
      instance: 'core',
      tenantThresholds: { windows: service.core.windows, policy: service.core.policy, minRatio: 0 },
    });
    expect(await snap.rows()).not.toHaveLength(0);
  });

  it("writes each active tenant's latency SLO from the policy in force, and none for a tenant without one", async () => {
    const document = parsePolicy(
      'degradation:\n  defaults:\n    triggers: { latencyP95Ms: 8000 }\n  tenants:\n    fast: { triggers: { latencyP95Ms: 2000 } }\n    none: { triggers: { latencyP95Ms: null } }\n',
      'test policy',
    );
    const windows = { tenants: () => ['fast', 'none', 'other'], tenantMetrics: () => undefined };
    const policy = { forTenant: () => ({ tenant: {}, warnFraction: 0.8 }), current: () => document };
    const snap = new SelfMetricsSnapshotter(service.metrics.registry, service.store.client, { instance: 'slos', now: () => clock, tenantThresholds: { windows, policy } });
    await snap.snapshot();
    const rows = await stored('slos', TENANT_LATENCY_SLO);
    expect(rows.map((r) => [r.Labels.tenant, r.Value])).toEqual([
      ['fast', 2000],
      ['other', 8000],
    ]);
    // bounded like the threshold rows
    expect(tenantLatencySloRows({ windows, degradation: () => document.degradation, maxRows: 1 }, at(0), 'x')).toHaveLength(1);
  });

  it('is a 10-second scheduler job', () => {
    const job = selfMetricsSnapshotJob(snapshotter('job'));
    expect(job).toMatchObject({ name: 'self-metrics-snapshot', schedule: '*/10 * * * * *' });
  });
});
