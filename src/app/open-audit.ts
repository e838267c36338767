import type { ClickHouseClient } from '@clickhouse/client';
import { AuditAnchor } from '../audit/audit-anchor.js';
import { checkAuditAtStart, verifyAllChains, type IntegrityOptions } from '../audit/audit-integrity.js';
import { resolveAuditKey } from '../audit/audit-key.js';
import { AuditLog } from '../audit/audit-log.js';
import { ClickHouseAuditStore } from '../storage/repositories/clickhouse-audit-store.js';
import type { ServiceConfig } from './config.js';
import type { Logger } from './log.js';
import type { SelfMetrics } from './self-metrics.js';

export interface OpenedAudit {
  audit: AuditLog;
  /** starts checkpointing and the whole-chain verification, once the service is up */
  start(): void;
  /** after the audit log is closed: stops verifying and writes a last checkpoint */
  close(): Promise<void>;
}

/**
 * Opens the audit log anchored by signed checkpoints: replays the write-ahead log, checks the
 * stored history against the checkpoints, and keeps the breakers whose history was deleted. Must
 * run before breakers are restored.
 */
export async function openAudit(client: ClickHouseClient, config: ServiceConfig, metrics: SelfMetrics, log: Logger): Promise<OpenedAudit> {
  const { key, source } = resolveAuditKey(process.env, config.auditKeyFile, config.dataDir);
  const store = new ClickHouseAuditStore(client);
  const anchor = await AuditAnchor.open(store, {
    key,
    anchorFile: AuditAnchor.fileIn(config.dataDir),
    onCheckpoint: () => metrics.auditCheckpoints.inc(),
    onCheckpointError: (error) => {
      metrics.auditCheckpointFailures.inc();
      log.error({ error: error.message.slice(0, 300) }, 'audit checkpoint not written; retried at the next interval');
    },
  });
  const { log: audit, replayed } = await AuditLog.open(store, {
    walDir: AuditLog.walDirIn(config.dataDir),
    anchor,
    onQueueDepth: (events) => metrics.auditQueueDepth.set(events),
    onCoalesced: () => metrics.auditCoalesced.inc(),
    onWritten: (batch) => {
      metrics.auditWritten.inc(batch.events.length);
      anchor.observe(batch);
    },
    onFlushError: (error, events) => {
      metrics.auditFlushFailures.inc();
      log.error({ error: error.message.slice(0, 300), events }, 'audit batch not written to ClickHouse; retrying (the events are in the write-ahead log)');
    },
  });
  if (replayed > 0) {
    metrics.auditReplayed.inc(replayed);
    log.info({ events: replayed }, 'audit events from the write-ahead log written');
  }
  const integrity: IntegrityOptions = { store, anchor, audit, log, onFailures: (count) => metrics.auditIntegrityFailures.set(count) };
  const report = await checkAuditAtStart(integrity);
  log.info({ checkpoints: report.checkpoints, keySource: source, failures: report.tenants.length, breakersKept: report.kept.length }, 'audit history checked against its signed checkpoints');

  let stopped = false;
  let verifying: Promise<void> = Promise.resolve();
  return {
    audit,
    start() {
      anchor.start(config.auditCheckpointIntervalMs);
      const reported = new Set(report.tenants.map((finding) => finding.tenantId));
      verifying = verifyAllChains(integrity, reported, () => stopped).then(
        (failed) => {
          const chains = new Set([...reported, ...failed]).size + (report.chainProblem === undefined ? 0 : 1);
          metrics.auditIntegrityFailures.set(chains);
          log.info({ failed: failed.length }, 'every audit chain verified');
        },
        (err: Error) => log.error({ error: err.message }, 'audit chains not verified'),
      );
    },
    async close() {
      stopped = true;
      await verifying;
      await anchor.close();
    },
  };
}
