-- Run-time policy changes (GraphQL mutations), in the order they were made. At start, and after
-- every reload of the policy file, they are laid over the file's policy again: a change made at
-- run time wins over the file until it is changed back through the API.
CREATE TABLE IF NOT EXISTS policy_changes
(
    Seq         UInt64,
    ChangedAt   DateTime64(3, 'UTC') DEFAULT now64(3),
    Actor       String,
    Kind        LowCardinality(String),
    TenantId    String,
    Change      String CODEC(ZSTD(1))
)
ENGINE = MergeTree
ORDER BY Seq;

-- Per-tenant anomaly baselines, recomputed from the per-minute rollup by a scheduled job.
CREATE TABLE IF NOT EXISTS tenant_baselines
(
    TenantId        LowCardinality(String),
    Metric          LowCardinality(String),
    Median          Float64,
    Mad             Float64,
    Samples         UInt32,
    ComputedAt      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ComputedAt)
ORDER BY (TenantId, Metric);
