-- What a call's error means, as the live windows and the degradation engine read it
-- (src/normalize/call-outcome.ts): ok, rate_limited, provider_error (5xx, overloaded, timeouts,
-- connection errors), client_error (other 4xx) or other_error. Written by ingest with every span, so
-- the rollup, the dashboards and the alerts count 429s and failures by the same definition; rows
-- stored before this column existed read an approximation from their status code and error flag.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS ErrorClass LowCardinality(String)
    DEFAULT multiIf(
        HttpStatusCode = 429, 'rate_limited',
        HttpStatusCode >= 500 AND HttpStatusCode < 600, 'provider_error',
        HttpStatusCode >= 400 AND HttpStatusCode < 500, 'client_error',
        IsError, 'other_error',
        'ok')
    AFTER IsError;

-- The rollup counts errors as the windows' errorRatio does (every error but a 429), and keeps 429s
-- and provider failures apart.
ALTER TABLE spans_tenant_minute ADD COLUMN IF NOT EXISTS RateLimited SimpleAggregateFunction(sum, UInt64) AFTER Errors;

ALTER TABLE spans_tenant_minute ADD COLUMN IF NOT EXISTS ProviderErrors SimpleAggregateFunction(sum, UInt64) AFTER RateLimited;

DROP VIEW IF EXISTS spans_tenant_minute_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS spans_tenant_minute_mv TO spans_tenant_minute AS
SELECT
    TenantId,
    toStartOfMinute(StartTime) AS Minute,
    Provider,
    if(ResponseModel != '', ResponseModel, RequestModel) AS Model,
    count() AS Spans,
    countIf(Operation IN ('chat', 'generate_content', 'text_completion', 'embeddings')) AS ModelCalls,
    countIf(Operation = 'execute_tool') AS ToolCalls,
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
