-- The audit log: every breaker transition, operator action, policy change, degradation and
-- escalation acknowledgement, append-only and hash-chained per tenant (Breakwater never updates or
-- deletes a row). Hash = sha256(PrevHash || '\n' || canonical JSON of the other columns); see
-- src/breaker/audit-event.ts. No TTL: how long audit evidence is kept is a compliance decision,
-- taken by dropping whole monthly partitions deliberately, not by a background expiry.
CREATE TABLE IF NOT EXISTS audit_events
(
    TenantId    LowCardinality(String),
    Seq         UInt64 CODEC(Delta, ZSTD(1)),
    EventTime   DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    Kind        LowCardinality(String),
    RunId       String CODEC(ZSTD(1)),
    Scope       LowCardinality(String),
    Metric      LowCardinality(String),
    Threshold   Float64 CODEC(ZSTD(1)),
    Observed    Float64 CODEC(ZSTD(1)),
    OldState    LowCardinality(String),
    NewState    LowCardinality(String),
    Actor       String CODEC(ZSTD(1)),
    Reason      String CODEC(ZSTD(1)),
    Details     String CODEC(ZSTD(1)),
    PrevHash    String CODEC(ZSTD(1)),
    Hash        String CODEC(ZSTD(1)),

    INDEX idx_run_id RunId TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(EventTime)
ORDER BY (TenantId, Seq);

-- The latest Seq and Hash of each tenant's chain, written after every append. A chain cannot show
-- that its newest events were deleted; comparing its end with this head can. The version column
-- keeps the highest Seq, so inserting an older head cannot roll it back.
CREATE TABLE IF NOT EXISTS audit_heads
(
    TenantId    LowCardinality(String),
    Seq         UInt64,
    Hash        String,
    EventTime   DateTime64(3, 'UTC'),
    UpdatedAt   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(Seq)
ORDER BY TenantId;
