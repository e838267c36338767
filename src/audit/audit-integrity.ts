import type { Logger } from '../app/log.js';
import type { AnchorReport, AuditAnchor } from './audit-anchor.js';
import { PLATFORM_AUDIT_TENANT, type AuditEventInput } from './audit-event.js';
import type { AuditLog } from './audit-log.js';
import type { AuditStore } from './audit-store.js';

export interface IntegrityOptions {
  store: AuditStore;
  anchor: AuditAnchor;
  audit: AuditLog;
  log: Logger;
  /** chains found failing so far */
  onFailures: (count: number) => void;
}

const ACTOR = 'breakwater';

/**
 * Checks the audit history against its signed checkpoints before any breaker is restored, records
 * every contradiction in the affected tenant's own chain (kind `audit_integrity`), and writes back
 * the breakers whose stored state was deleted or cannot be trusted, as the checkpoint had them, so
 * the restore that follows keeps them instead of releasing them.
 */
export async function checkAuditAtStart(o: IntegrityOptions): Promise<AnchorReport> {
  const report = await o.anchor.check(await o.store.openBreakers());
  const records: AuditEventInput[] = [];
  if (report.chainProblem !== undefined) {
    o.log.error({ problem: report.chainProblem }, 'audit checkpoints fail verification: someone changed the audit tables or the anchor file');
    records.push({ tenantId: PLATFORM_AUDIT_TENANT, kind: 'audit_integrity', actor: ACTOR, reason: report.chainProblem, details: { checkpoints: report.checkpoints } });
  }
  if (report.unconfirmed) {
    o.log.warn({ checkpoints: report.checkpoints }, 'audit checkpoints found without an anchor file: deleting the newest checkpoints would go unseen this once');
  }
  for (const finding of report.tenants) {
    o.log.error({ tenantId: finding.tenantId, problem: finding.problem }, "a tenant's audit history contradicts its signed checkpoint");
    records.push({
      tenantId: finding.tenantId,
      kind: 'audit_integrity',
      actor: ACTOR,
      reason: finding.problem,
      details: { checkpoint: finding.checkpoint, anchoredSeq: finding.anchoredSeq },
    });
  }
  for (const kept of report.kept) {
    o.log.error({ tenantId: kept.tenantId, scope: kept.scope, runId: kept.runId, state: kept.state, why: kept.why }, 'breaker kept as its signed checkpoint had it');
    records.push({
      tenantId: kept.tenantId,
      kind: 'audit_integrity',
      scope: kept.scope,
      runId: kept.runId,
      newState: kept.state,
      actor: ACTOR,
      reason: `breaker kept ${kept.state} as signed checkpoint #${kept.checkpoint} had it: ${kept.why}`,
      // `breaker` makes the audit writer store this state again, so the restore that follows reads it
      details: { breaker: JSON.parse(kept.snapshot) as unknown, checkpoint: kept.checkpoint },
    });
  }
  await Promise.all(records.map((record) => o.audit.append(record)));
  const failures = report.tenants.length + (report.chainProblem === undefined ? 0 : 1);
  o.onFailures(failures);
  o.anchor.seed(await o.store.heads(), await o.store.openBreakers());
  return report;
}

/**
 * Recomputes every tenant's whole chain (after the start, off the decision path) and records each
 * failure not already reported. Returns the tenants that failed.
 */
export async function verifyAllChains(o: IntegrityOptions, alreadyReported: ReadonlySet<string>, stopped: () => boolean): Promise<string[]> {
  const failed: string[] = [];
  for (const tenantId of (await o.store.heads()).keys()) {
    if (stopped()) break;
    const result = await o.audit.verify(tenantId);
    if (result.ok) continue;
    failed.push(tenantId);
    if (alreadyReported.has(tenantId)) continue;
    o.log.error({ tenantId, problem: result.problem, firstBadSeq: result.firstBadSeq }, "a tenant's audit chain fails verification");
    await o.audit.append({ tenantId, kind: 'audit_integrity', actor: ACTOR, reason: result.problem ?? 'chain verification failed', details: { firstBadSeq: result.firstBadSeq ?? null } });
  }
  return failed;
}
