-- The current state of every breaker that is not CLOSED, one row per (tenant, scope, run), written
-- by the audit writer in the same flush as the transition event that produced it. Restore at start
-- reads this table instead of scanning the whole audit history. The version column (the event's
-- Seq) keeps the newest state; a breaker that closes gets a CLOSED row. No TTL: deleting a CLOSED
-- row while an older OPEN version of it sits in another part would reopen the breaker on restore, so
-- the breaker-state-prune job deletes every version of a breaker closed for a day at once.
CREATE TABLE IF NOT EXISTS breaker_state
(
    TenantId    LowCardinality(String),
    Scope       LowCardinality(String),
    RunId       String,
    State       LowCardinality(String),
    Snapshot    String CODEC(ZSTD(1)),
    Seq         UInt64,
    UpdatedAt   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(Seq)
ORDER BY (TenantId, Scope, RunId);

-- Breakers recorded before this table existed: the newest snapshot in each one's audit history.
INSERT INTO breaker_state (TenantId, Scope, RunId, State, Snapshot, Seq, UpdatedAt)
SELECT TenantId, Scope, RunId,
       JSONExtractString(argMax(Details, Seq), 'breaker', 'state') AS State,
       JSONExtractRaw(argMax(Details, Seq), 'breaker') AS Snapshot,
       max(Seq) AS LastSeq,
       max(EventTime) AS LastTime
FROM audit_events
WHERE Kind IN ('breaker_transition', 'operator_action') AND JSONHas(Details, 'breaker')
GROUP BY TenantId, Scope, RunId
HAVING State != 'CLOSED';
