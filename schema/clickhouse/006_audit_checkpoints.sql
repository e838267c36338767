-- Signed checkpoints of the tenants' audit chains (src/audit/audit-checkpoint.ts). Each lists the
-- tenants whose chain moved since the one before (head Seq and Hash, open breakers), links to the
-- previous checkpoint by hash and carries an HMAC whose key ClickHouse never holds, so deleting or
-- rewriting a tenant's events and head, or a checkpoint, fails verification at the next start.
-- Append-only, no TTL, like audit_events.
CREATE TABLE IF NOT EXISTS audit_checkpoints
(
    Seq         UInt64,
    CreatedAt   DateTime64(3, 'UTC'),
    PrevHash    String,
    Body        String CODEC(ZSTD(3)),
    Hash        String,
    Mac         String
)
ENGINE = MergeTree
ORDER BY Seq;
