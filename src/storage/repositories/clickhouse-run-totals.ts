import type { ClickHouseClient } from '@clickhouse/client';
import type { RunTotals } from '../../windows/run-window.js';
import { AGGREGATE_OPERATIONS, MODEL_OPERATIONS, TOOL_OPERATION } from '../../windows/span-facts.js';
import { queryRows } from '../clickhouse.js';

export interface RunTotalsQuery {
  /** runs with a span stored since then (epoch ms) */
  activeSinceMs: number;
  /** spans of those runs that started before this (epoch ms) are not read */
  readFromMs: number;
  maxRuns: number;
}

interface Row {
  TenantId: string;
  RunId: string;
  Spans: string;
  Steps: string;
  ModelCalls: string;
  ToolCalls: string;
  ErrorCalls: string;
  InputTokens: string;
  OutputTokens: string;
  CostUsd: number;
  StartMs: string;
  EndMs: string;
  MaxDepth: number;
}

const list = (values: Iterable<string>) => [...values].map((v) => `'${v}'`).join(', ');

/**
 * The cumulative figures of recently active runs, counted by the windows' own definitions (the
 * operation sets of span-facts.ts; 429s are not error calls; agent spans' tokens and cost are
 * roll-ups, not counted), each stored span once however often it was delivered.
 */
export async function recentRunTotals(client: ClickHouseClient, query: RunTotalsQuery): Promise<RunTotals[]> {
  const model = `Operation IN (${list(MODEL_OPERATIONS)})`;
  const step = `(${model} OR Operation = '${TOOL_OPERATION}')`;
  const counted = `Operation NOT IN (${list(AGGREGATE_OPERATIONS)})`;
  // As spanToolCalls: a tool span is one call, a model span its counted requested calls.
  const toolCalls = `if(Operation = '${TOOL_OPERATION}', 1, if(${model}, toUInt64(SpanToolCalls), 0))`;
  const rows = await queryRows<Row>(
    client,
    `SELECT TenantId, RunId, toString(count()) AS Spans, toString(countIf(${model}) + sum(${toolCalls})) AS Steps,
            toString(countIf(${model})) AS ModelCalls, toString(sum(${toolCalls})) AS ToolCalls,
            toString(countIf(${step} AND IsError AND HttpStatusCode != 429)) AS ErrorCalls,
            toString(sumIf(InputTokens, ${counted})) AS InputTokens, toString(sumIf(OutputTokens, ${counted})) AS OutputTokens,
            sumIf(CostUsd, ${counted}) AS CostUsd,
            toString(toUnixTimestamp64Milli(min(StartTime))) AS StartMs, toString(toUnixTimestamp64Milli(max(EndTime))) AS EndMs,
            max(Depth) AS MaxDepth
     FROM (
       SELECT TenantId, RunId, TraceId, SpanId, Operation, ToolCalls AS SpanToolCalls, IsError, HttpStatusCode, InputTokens, OutputTokens, CostUsd, StartTime, EndTime, Depth, IngestedAt
       FROM spans
       WHERE StartTime >= fromUnixTimestamp64Milli({readFrom:Int64})
         AND (TenantId, RunId) IN (
           SELECT DISTINCT TenantId, RunId FROM spans
           WHERE StartTime >= fromUnixTimestamp64Milli({readFrom:Int64}) AND IngestedAt >= fromUnixTimestamp64Milli({since:Int64}) AND RunId != '')
       LIMIT 1 BY TenantId, TraceId, SpanId
     )
     GROUP BY TenantId, RunId
     ORDER BY max(IngestedAt) DESC
     LIMIT {maxRuns:UInt32}`,
    { since: Math.floor(query.activeSinceMs), readFrom: Math.floor(query.readFromMs), maxRuns: query.maxRuns },
  );
  return rows.map((r) => ({
    tenantId: r.TenantId,
    runId: r.RunId,
    spanCount: Number(r.Spans),
    stepCount: Number(r.Steps),
    modelCalls: Number(r.ModelCalls),
    toolCalls: Number(r.ToolCalls),
    errorCalls: Number(r.ErrorCalls),
    inputTokens: Number(r.InputTokens),
    outputTokens: Number(r.OutputTokens),
    costUsd: Number(r.CostUsd),
    startedAtMs: Number(r.StartMs),
    endedAtMs: Number(r.EndMs),
    maxDepth: Number(r.MaxDepth),
  }));
}
