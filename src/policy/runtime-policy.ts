import type { ClickHouseClient } from '@clickhouse/client';
import type { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../app/log.js';
import { queryRows } from '../storage/clickhouse.js';
import { validatePolicyChange, type PolicyChange } from './effective-policy.js';
import type { PolicyError } from './policy-error.js';
import type { PolicyStore } from './policy-store.js';
import type { PolicyDocument } from './policy-types.js';

/** The audit chain of changes that are not one tenant's (tier thresholds, the default tier). */
export const PLATFORM_AUDIT_TENANT = '*';

export type ChangeOutcome = { ok: true; document: PolicyDocument } | { ok: false; error: PolicyError };

/**
 * Run-time policy changes: validated exactly like the file, persisted in `policy_changes`, recorded
 * in the audit log with the actor, and laid over the file's policy again after every file reload
 * and at start. Changes are applied one at a time, in order.
 */
export class RuntimePolicy {
  #changes: PolicyChange[] = [];
  #seq = 0;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: PolicyStore,
    private readonly client: ClickHouseClient,
    private readonly audit: AuditLog,
    private readonly log: Logger,
  ) {
    store.setOverlay((fileDocument) => this.#overlay(fileDocument));
  }

  /** Reads the persisted changes and puts file + changes in force. */
  async load(fileDocument: PolicyDocument): Promise<void> {
    const rows = await queryRows<{ Seq: string; Change: string }>(
      this.client,
      'SELECT toString(Seq) AS Seq, Change FROM policy_changes ORDER BY Seq',
    );
    this.#changes = rows.map((r) => JSON.parse(r.Change) as PolicyChange);
    this.#seq = rows.length === 0 ? 0 : Number(rows.at(-1)!.Seq);
    this.store.replace(this.#overlay(fileDocument), 'start-up');
  }

  /** Validates, persists, audits and applies one change; a refused change changes nothing. */
  change(change: PolicyChange, actor: string): Promise<ChangeOutcome> {
    const run = this.#queue.then(() => this.#apply(change, actor));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(change: PolicyChange, actor: string): Promise<ChangeOutcome> {
    const before = this.store.current();
    const result = validatePolicyChange(before, change);
    if (!result.ok) return result;
    const seq = this.#seq + 1;
    await this.client.insert({
      table: 'policy_changes',
      values: [{ Seq: seq, Actor: actor, Kind: change.kind, TenantId: 'tenantId' in change ? change.tenantId : '', Change: JSON.stringify(change) }],
      format: 'JSONEachRow',
    });
    this.#seq = seq;
    this.#changes.push(change);
    this.store.replace(result.document, `${change.kind} by ${actor}`);
    await this.audit.append({
      tenantId: 'tenantId' in change ? change.tenantId : PLATFORM_AUDIT_TENANT,
      kind: 'policy_change',
      actor,
      reason: describeChange(change),
      details: { change },
    });
    return result;
  }

  #overlay(fileDocument: PolicyDocument): PolicyDocument {
    let document = fileDocument;
    for (const change of this.#changes) {
      const result = validatePolicyChange(document, change);
      if (result.ok) document = result.document;
      // The file may have removed what a change refers to (a tier, say): the change is skipped, said once per reload.
      else this.log.warn({ change: change.kind, problem: result.error.message }, 'a run-time policy change no longer applies to the file and was skipped');
    }
    return document;
  }
}

function describeChange(change: PolicyChange): string {
  switch (change.kind) {
    case 'setTenantPolicy':
      return `tenant ${change.tenantId} policy set${change.tier ? ` (tier ${change.tier})` : ''}`;
    case 'removeTenantPolicy':
      return `tenant ${change.tenantId} policy removed`;
    case 'setTierThresholds':
      return `tier ${change.tier} thresholds changed`;
    case 'setDefaultTier':
      return `default tier set to ${change.tier}`;
    case 'setTenantDegradation':
      return `tenant ${change.tenantId} degradation policy ${change.patch === null ? 'removed' : 'set'}`;
  }
}
