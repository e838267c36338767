-- Tool calls a span stands for (src/normalize/tool-calls.ts): 1 for a tool span, on a model span the
-- calls its response asked for when its trace has no tool span, else 0. Written by ingest with every
-- span, so the rollup, the dashboards and the alerts count the tool calls of client-level
-- instrumentations (which emit no tool span) as the live windows do; rows stored before this column
-- existed read 1 for a tool span and 0 otherwise, what was counted then.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS ToolCalls UInt16 DEFAULT Operation = 'execute_tool';

DROP VIEW IF EXISTS spans_tenant_minute_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS spans_tenant_minute_mv TO spans_tenant_minute AS
SELECT
    TenantId,
    toStartOfMinute(StartTime) AS Minute,
    Provider,
    if(ResponseModel != '', ResponseModel, RequestModel) AS Model,
    count() AS Spans,
    countIf(Operation IN ('chat', 'generate_content', 'text_completion', 'embeddings')) AS ModelCalls,
    sum(toUInt64(ToolCalls)) AS ToolCalls,
    countIf(ErrorClass IN ('provider_error', 'client_error', 'other_error')) AS Errors,
    countIf(ErrorClass = 'rate_limited') AS RateLimited,
    countIf(ErrorClass = 'provider_error') AS ProviderErrors,
    sum(toUInt64(InputTokens)) AS InputTokens,
    sum(toUInt64(OutputTokens)) AS OutputTokens,
    sum(CostUsd) AS CostUsd,
    max(Depth) AS MaxDepth,
    uniqState(RunId) AS Runs,
    quantilesStateIf(0.5, 0.95, 0.99)(DurationNs / 1e6, Operation IN ('chat', 'generate_content', 'text_completion', 'embeddings')) AS LatencyMs
FROM spans
GROUP BY TenantId, Minute, Provider, Model;
