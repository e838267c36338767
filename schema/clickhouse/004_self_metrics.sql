-- Breakwater's own Prometheus metrics, snapshotted into ClickHouse every few seconds (see
-- src/jobs/self-metrics-snapshot.ts) so Grafana's ClickHouse data source and alert rules can read
-- them without a Prometheus. One row per series per snapshot.
--   Value: the series' value at Time (a counter's running total, a gauge's reading).
--   Delta: for counters and histogram parts, the increase since this process's previous snapshot
--          (its first snapshot counts from process start), so rates are sum(Delta) over a range:
--          no window functions, restarts and series that appear later need no special handling.
--          0 for gauges.
-- Histograms are stored as Prometheus exposes them: <name>_bucket (label le), <name>_sum, <name>_count.
-- Rows named breakwater_tenant_threshold_ratio carry, per tenant near a threshold, the live metric
-- over its threshold (labels tenant, metric, threshold, warn_fraction).
CREATE TABLE IF NOT EXISTS self_metrics
(
    Time        DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    Instance    LowCardinality(String),
    Name        LowCardinality(String),
    Kind        LowCardinality(String),
    Labels      Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Value       Float64 CODEC(Gorilla, ZSTD(1)),
    Delta       Float64 CODEC(Gorilla, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(Time)
ORDER BY (Name, Instance, Time)
TTL toDateTime(Time) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1;
