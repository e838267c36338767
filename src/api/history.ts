import type { ClickHouseClient } from '@clickhouse/client';
import { queryRows } from '../storage/clickhouse.js';

// History answered from ClickHouse. Per-minute and coarser series read the rollup table
// (spans_tenant_minute); finer steps read raw spans. Every value is a bound parameter.

export type TimeseriesMetric =
  | 'SPANS'
  | 'MODEL_CALLS'
  | 'TOOL_CALLS'
  | 'ERRORS'
  | 'INPUT_TOKENS'
  | 'OUTPUT_TOKENS'
  | 'TOKENS'
  | 'COST_USD'
  | 'RUNS'
  | 'LATENCY_P50_MS'
  | 'LATENCY_P95_MS';

/** The aggregate over the rollup table, and the same over raw spans, for each metric. */
const METRIC_SQL: Record<TimeseriesMetric, { rollup: string; raw: string }> = {
  SPANS: { rollup: 'sum(Spans)', raw: 'count()' },
  MODEL_CALLS: { rollup: 'sum(ModelCalls)', raw: "countIf(Operation IN ('chat', 'generate_content', 'text_completion', 'embeddings'))" },
  TOOL_CALLS: { rollup: 'sum(ToolCalls)', raw: "sum(ToolCalls)" },
  ERRORS: { rollup: 'sum(Errors)', raw: "countIf(ErrorClass IN ('provider_error', 'client_error', 'other_error'))" },
  INPUT_TOKENS: { rollup: 'sum(InputTokens)', raw: 'sum(InputTokens)' },
  OUTPUT_TOKENS: { rollup: 'sum(OutputTokens)', raw: 'sum(OutputTokens)' },
  TOKENS: { rollup: 'sum(InputTokens) + sum(OutputTokens)', raw: 'sum(InputTokens) + sum(OutputTokens)' },
  COST_USD: { rollup: 'sum(CostUsd)', raw: 'sum(CostUsd)' },
  RUNS: { rollup: 'uniqMerge(Runs)', raw: 'uniq(RunId)' },
  LATENCY_P50_MS: {
    rollup: 'quantilesIfMerge(0.5, 0.95, 0.99)(LatencyMs)[1]',
    raw: "quantileIf(0.5)(DurationNs / 1e6, Operation IN ('chat', 'generate_content', 'text_completion', 'embeddings'))",
  },
  LATENCY_P95_MS: {
    rollup: 'quantilesIfMerge(0.5, 0.95, 0.99)(LatencyMs)[2]',
    raw: "quantileIf(0.95)(DurationNs / 1e6, Operation IN ('chat', 'generate_content', 'text_completion', 'embeddings'))",
  },
};

export const MAX_TIMESERIES_POINTS = 10_000;

export class HistoryRangeError extends Error {
  override name = 'HistoryRangeError';
}

export interface TimeseriesPoint {
  time: Date;
  value: number;
}

/**
 * A tenant's metric per step over [from, to). Buckets with no spans are absent (a gap, not a zero),
 * as Grafana and PromQL render them.
 */
export async function tenantTimeseries(
  client: ClickHouseClient,
  tenantId: string,
  metric: TimeseriesMetric,
  from: Date,
  to: Date,
  stepSeconds: number,
): Promise<TimeseriesPoint[]> {
  checkRange(from, to);
  if (!Number.isInteger(stepSeconds) || stepSeconds < 1) throw new HistoryRangeError('stepSeconds must be a positive integer');
  const points = (to.getTime() - from.getTime()) / 1000 / stepSeconds;
  if (points > MAX_TIMESERIES_POINTS) throw new HistoryRangeError(`range / step gives ${Math.ceil(points)} points; at most ${MAX_TIMESERIES_POINTS}`);
  const sql = METRIC_SQL[metric];
  const useRollup = stepSeconds % 60 === 0;
  const query = useRollup
    ? `SELECT toUnixTimestamp(toStartOfInterval(Minute, toIntervalSecond({step:UInt32}))) AS t, toFloat64(${sql.rollup}) AS v
       FROM spans_tenant_minute
       WHERE TenantId = {tenant:String} AND Minute >= toStartOfMinute(fromUnixTimestamp64Milli({from:Int64})) AND Minute < fromUnixTimestamp64Milli({to:Int64})
       GROUP BY t ORDER BY t`
    : `SELECT toUnixTimestamp(toStartOfInterval(StartTime, toIntervalSecond({step:UInt32}))) AS t, toFloat64(${sql.raw}) AS v
       FROM spans
       WHERE TenantId = {tenant:String} AND StartTime >= fromUnixTimestamp64Milli({from:Int64}) AND StartTime < fromUnixTimestamp64Milli({to:Int64})
       GROUP BY t ORDER BY t`;
  const rows = await queryRows<{ t: number | string; v: number | string }>(client, query, {
    tenant: tenantId,
    from: from.getTime(),
    to: to.getTime(),
    step: stepSeconds,
  });
  return rows.map((r) => ({ time: new Date(Number(r.t) * 1000), value: finite(r.v) }));
}

export interface CostRow {
  day: string;
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  calls: number;
}

/** Cost per day, provider and model, most expensive first within a day. */
export async function costAttribution(client: ClickHouseClient, tenantId: string, from: Date, to: Date): Promise<CostRow[]> {
  checkRange(from, to);
  const rows = await queryRows<Record<string, string | number>>(
    client,
    `SELECT toString(toDate(Minute)) AS day, Provider AS provider, Model AS model,
            toFloat64(sum(InputTokens)) AS inputTokens, toFloat64(sum(OutputTokens)) AS outputTokens,
            toFloat64(sum(CostUsd)) AS costUsd, toFloat64(sum(ModelCalls)) AS calls
     FROM spans_tenant_minute
     WHERE TenantId = {tenant:String} AND Minute >= toStartOfMinute(fromUnixTimestamp64Milli({from:Int64})) AND Minute < fromUnixTimestamp64Milli({to:Int64})
       AND (InputTokens > 0 OR OutputTokens > 0 OR ModelCalls > 0)
     GROUP BY day, provider, model
     ORDER BY day, costUsd DESC, model`,
    { tenant: tenantId, from: from.getTime(), to: to.getTime() },
  );
  return rows.map((r) => ({
    day: String(r.day),
    provider: String(r.provider),
    model: String(r.model),
    inputTokens: finite(r.inputTokens),
    outputTokens: finite(r.outputTokens),
    costUsd: finite(r.costUsd),
    calls: finite(r.calls),
  }));
}

export interface StepRow {
  spanId: string;
  parentSpanId: string;
  name: string;
  operation: string;
  toolName: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  isError: boolean;
  depth: number;
  startTime: Date;
  durationMs: number;
}

/** The spans of one run in start order (steps, sub-agents and everything else the run emitted). */
export async function runSteps(client: ClickHouseClient, tenantId: string, runId: string, limit: number): Promise<StepRow[]> {
  const rows = await queryRows<Record<string, string | number | boolean>>(
    client,
    `SELECT SpanId, ParentSpanId, SpanName, Operation, ToolName, if(ResponseModel != '', ResponseModel, RequestModel) AS Model,
            InputTokens, OutputTokens, IsError, Depth, toUnixTimestamp64Milli(StartTime) AS StartMs, DurationNs / 1e6 AS DurationMs
     FROM spans
     WHERE TenantId = {tenant:String} AND RunId = {run:String}
     ORDER BY StartTime
     LIMIT {limit:UInt32}`,
    { tenant: tenantId, run: runId, limit },
  );
  return rows.map((r) => ({
    spanId: String(r.SpanId),
    parentSpanId: String(r.ParentSpanId),
    name: String(r.SpanName),
    operation: String(r.Operation),
    toolName: String(r.ToolName),
    model: String(r.Model),
    inputTokens: Number(r.InputTokens),
    outputTokens: Number(r.OutputTokens),
    isError: r.IsError === true || r.IsError === 1 || r.IsError === 'true',
    depth: Number(r.Depth),
    startTime: new Date(Number(r.StartMs)),
    durationMs: finite(r.DurationMs),
  }));
}

/** Whether a run has any stored span: a run can be asked about after it left the live windows. */
export function runExists(client: ClickHouseClient, tenantId: string, runId: string): Promise<boolean> {
  return anySpan(client, 'TenantId = {tenant:String} AND RunId = {run:String}', { tenant: tenantId, run: runId });
}

/** Whether a tenant has any stored span, for the same reason. */
export function tenantHasSpans(client: ClickHouseClient, tenantId: string): Promise<boolean> {
  return anySpan(client, 'TenantId = {tenant:String}', { tenant: tenantId });
}

async function anySpan(client: ClickHouseClient, where: string, params: Record<string, string>): Promise<boolean> {
  const rows = await queryRows<{ n: number | string }>(client, `SELECT count() AS n FROM (SELECT 1 FROM spans WHERE ${where} LIMIT 1)`, params);
  return Number(rows[0]?.n) > 0;
}

function checkRange(from: Date, to: Date): void {
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) throw new HistoryRangeError('from and to must be valid times');
  if (to <= from) throw new HistoryRangeError('to must be after from');
}

function finite(value: number | string | boolean | undefined): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}
