import type { ClickHouseClient } from '@clickhouse/client';
import { ANOMALY_METRICS, type AnomalyDetector, type AnomalyMetric, type Baseline } from '../breakers/anomaly.js';
import { queryRows } from '../storage/clickhouse.js';

/**
 * Each tenant's per-minute history from the rollup, as the live windows measure the same figures:
 * tokenVelocity60s is the minute's tokens / 60, the per-minute call counts as they are. Minutes
 * with no spans are absent, so the baseline describes the tenant when it is active.
 */
const BASELINE_SQL = `
WITH per_minute AS (
    SELECT TenantId, Minute,
           (sum(InputTokens) + sum(OutputTokens)) / 60 AS tokenVelocity60s,
           toFloat64(sum(ToolCalls)) AS toolCallsPerMinute,
           toFloat64(sum(ModelCalls)) AS modelCallsPerMinute
    FROM spans_tenant_minute
    WHERE Minute >= now() - toIntervalDay({days:UInt32}) AND Minute < toStartOfMinute(now())
    GROUP BY TenantId, Minute
),
medians AS (
    SELECT TenantId, count() AS samples,
           median(tokenVelocity60s) AS tvMedian, median(toolCallsPerMinute) AS tcMedian, median(modelCallsPerMinute) AS mcMedian
    FROM per_minute GROUP BY TenantId
)
SELECT p.TenantId AS tenantId, any(m.samples) AS samples,
       any(m.tvMedian) AS tvMedian, median(abs(p.tokenVelocity60s - m.tvMedian)) AS tvMad,
       any(m.tcMedian) AS tcMedian, median(abs(p.toolCallsPerMinute - m.tcMedian)) AS tcMad,
       any(m.mcMedian) AS mcMedian, median(abs(p.modelCallsPerMinute - m.mcMedian)) AS mcMad
FROM per_minute AS p INNER JOIN medians AS m ON p.TenantId = m.TenantId
GROUP BY p.TenantId`;

type BaselineRow = Record<'tenantId', string> & Record<'samples' | 'tvMedian' | 'tvMad' | 'tcMedian' | 'tcMad' | 'mcMedian' | 'mcMad', number | string>;

/** Recomputes every tenant's baselines, stores them, and hands them to the detector. */
export async function recomputeBaselines(client: ClickHouseClient, detector: AnomalyDetector, days = 7): Promise<number> {
  const rows = await queryRows<BaselineRow>(client, BASELINE_SQL, { days });
  const baselines = new Map<string, Partial<Record<AnomalyMetric, Baseline>>>();
  const stored: Record<string, unknown>[] = [];
  const computedAt = Date.now();
  for (const row of rows) {
    const samples = Number(row.samples);
    const byMetric: Record<AnomalyMetric, Baseline> = {
      tokenVelocity60s: { median: Number(row.tvMedian), mad: Number(row.tvMad), samples },
      toolCallsPerMinute: { median: Number(row.tcMedian), mad: Number(row.tcMad), samples },
      modelCallsPerMinute: { median: Number(row.mcMedian), mad: Number(row.mcMad), samples },
    };
    baselines.set(row.tenantId, byMetric);
    for (const metric of ANOMALY_METRICS) {
      const b = byMetric[metric];
      stored.push({ TenantId: row.tenantId, Metric: metric, Median: b.median, Mad: b.mad, Samples: samples, ComputedAt: computedAt });
    }
  }
  if (stored.length > 0) await client.insert({ table: 'tenant_baselines', values: stored, format: 'JSONEachRow' });
  detector.setBaselines(baselines);
  return baselines.size;
}

/** The stored baselines, so a restarted process detects anomalies before the job's next run. */
export async function loadBaselines(client: ClickHouseClient, detector: AnomalyDetector): Promise<number> {
  const rows = await queryRows<{ TenantId: string; Metric: string; Median: number; Mad: number; Samples: number }>(
    client,
    'SELECT TenantId, Metric, Median, Mad, Samples FROM tenant_baselines FINAL',
  );
  const baselines = new Map<string, Partial<Record<AnomalyMetric, Baseline>>>();
  for (const row of rows) {
    if (!(ANOMALY_METRICS as readonly string[]).includes(row.Metric)) continue;
    const entry = baselines.get(row.TenantId) ?? {};
    entry[row.Metric as AnomalyMetric] = { median: Number(row.Median), mad: Number(row.Mad), samples: Number(row.Samples) };
    baselines.set(row.TenantId, entry);
  }
  detector.setBaselines(baselines);
  return baselines.size;
}
