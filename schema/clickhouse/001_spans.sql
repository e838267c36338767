-- Every span OTLP delivered, with the agent columns Breakwater reads from it.
-- Attributes keep their OTLP type: the value map holds the text form (strings as-is, ints and doubles
-- in decimal, bools as true/false, bytes base64, arrays and kvlists as OTLP/JSON AnyValue), and the
-- type map names the type of every non-string value, so the original AnyValue can be rebuilt.
CREATE TABLE IF NOT EXISTS spans
(
    TenantId            LowCardinality(String),
    RunId               String CODEC(ZSTD(1)),
    TraceId             String CODEC(ZSTD(1)),
    SpanId              String CODEC(ZSTD(1)),
    ParentSpanId        String CODEC(ZSTD(1)),
    TraceState          String CODEC(ZSTD(1)),
    Flags               UInt32 CODEC(ZSTD(1)),
    SpanName            LowCardinality(String),
    SpanKind            LowCardinality(String),
    ServiceName         LowCardinality(String),
    ScopeName           LowCardinality(String),
    ScopeVersion        LowCardinality(String),
    StartTime           DateTime64(9) CODEC(Delta, ZSTD(1)),
    EndTime             DateTime64(9) CODEC(Delta, ZSTD(1)),
    DurationNs          UInt64 CODEC(T64, ZSTD(1)),
    StatusCode          LowCardinality(String),
    StatusMessage       String CODEC(ZSTD(1)),
    ResourceAttributes      Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceAttributeTypes  Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(1)),
    SpanAttributes          Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    SpanAttributeTypes      Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(1)),
    Events Nested
    (
        Timestamp       DateTime64(9),
        Name            LowCardinality(String),
        Attributes      Map(LowCardinality(String), String),
        AttributeTypes  Map(LowCardinality(String), LowCardinality(String)),
        DroppedAttributesCount UInt32
    ) CODEC(ZSTD(1)),
    Links Nested
    (
        TraceId         String,
        SpanId          String,
        TraceState      String,
        Flags           UInt32,
        Attributes      Map(LowCardinality(String), String),
        AttributeTypes  Map(LowCardinality(String), LowCardinality(String)),
        DroppedAttributesCount UInt32
    ) CODEC(ZSTD(1)),
    DroppedAttributesCount  UInt32 CODEC(ZSTD(1)),
    DroppedEventsCount      UInt32 CODEC(ZSTD(1)),
    DroppedLinksCount       UInt32 CODEC(ZSTD(1)),

    Operation           LowCardinality(String),
    Provider            LowCardinality(String),
    RequestModel        LowCardinality(String),
    ResponseModel       LowCardinality(String),
    ToolName            LowCardinality(String),
    AgentId             String CODEC(ZSTD(1)),
    AgentName           LowCardinality(String),
    ConversationId      String CODEC(ZSTD(1)),
    InputTokens         UInt32 CODEC(T64, ZSTD(1)),
    OutputTokens        UInt32 CODEC(T64, ZSTD(1)),
    CostUsd             Float64 CODEC(Gorilla, ZSTD(1)),
    ErrorType           LowCardinality(String),
    HttpStatusCode      UInt16 CODEC(T64, ZSTD(1)),
    IsError             Bool,
    Depth               Int16 CODEC(T64, ZSTD(1)),
    RateLimitRemainingRequests Int64 CODEC(T64, ZSTD(1)),
    RateLimitRemainingTokens   Int64 CODEC(T64, ZSTD(1)),
    RateLimitLimitRequests     Int64 CODEC(T64, ZSTD(1)),
    RateLimitLimitTokens       Int64 CODEC(T64, ZSTD(1)),
    RetryAfterMs               Int64 CODEC(T64, ZSTD(1)),
    IngestedAt          DateTime64(3) DEFAULT now64(3) CODEC(Delta, ZSTD(1)),

    INDEX idx_run_id RunId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(StartTime)
ORDER BY (TenantId, toStartOfMinute(StartTime), RunId, StartTime)
TTL toDateTime(StartTime) + INTERVAL 30 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- Per-tenant per-minute rollup, split by provider and model for cost attribution.
CREATE TABLE IF NOT EXISTS spans_tenant_minute
(
    TenantId        LowCardinality(String),
    Minute          DateTime,
    Provider        LowCardinality(String),
    Model           LowCardinality(String),
    Spans           SimpleAggregateFunction(sum, UInt64),
    ModelCalls      SimpleAggregateFunction(sum, UInt64),
    ToolCalls       SimpleAggregateFunction(sum, UInt64),
    Errors          SimpleAggregateFunction(sum, UInt64),
    InputTokens     SimpleAggregateFunction(sum, UInt64),
    OutputTokens    SimpleAggregateFunction(sum, UInt64),
    CostUsd         SimpleAggregateFunction(sum, Float64),
    MaxDepth        SimpleAggregateFunction(max, Int16),
    Runs            AggregateFunction(uniq, String),
    -- latency of model calls only; merge with quantilesIfMerge(0.5, 0.95, 0.99)(LatencyMs)
    LatencyMs       AggregateFunction(quantilesIf(0.5, 0.95, 0.99), Float64, UInt8)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(Minute)
ORDER BY (TenantId, Minute, Provider, Model)
TTL Minute + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS spans_tenant_minute_mv TO spans_tenant_minute AS
SELECT
    TenantId,
    toStartOfMinute(StartTime) AS Minute,
    Provider,
    if(ResponseModel != '', ResponseModel, RequestModel) AS Model,
    count() AS Spans,
    countIf(Operation IN ('chat', 'generate_content', 'text_completion', 'embeddings')) AS ModelCalls,
    countIf(Operation = 'execute_tool') AS ToolCalls,
    countIf(IsError) AS Errors,
    sum(toUInt64(InputTokens)) AS InputTokens,
    sum(toUInt64(OutputTokens)) AS OutputTokens,
    sum(CostUsd) AS CostUsd,
    max(Depth) AS MaxDepth,
    uniqState(RunId) AS Runs,
    quantilesStateIf(0.5, 0.95, 0.99)(DurationNs / 1e6, Operation IN ('chat', 'generate_content', 'text_completion', 'embeddings')) AS LatencyMs
FROM spans
GROUP BY TenantId, Minute, Provider, Model;
