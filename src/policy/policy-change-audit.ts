// A change that is not one tenant's (a policy file reload, a tier-wide change) is recorded in the
// audit log of every tenant whose effective policy it changed, with the values before and after,
// so a tenant's own log tells the whole story of its limits.

import { PLATFORM_AUDIT_TENANT } from '../audit/audit-event.js';
import type { AuditLog } from '../audit/audit-log.js';
import { tenantValues } from './policy-provenance.js';
import type { PolicyStore } from './policy-store.js';
import type { PolicyDocument } from './policy-types.js';

export interface ValueChange {
  path: string;
  from: unknown;
  to: unknown;
}

/** The leaves of the tenant's effective policy (thresholds, breaker, degradation) that differ. */
function changedValues(previous: PolicyDocument, next: PolicyDocument, tenantId: string): ValueChange[] {
  const before = tenantValues(previous, tenantId);
  const after = tenantValues(next, tenantId);
  const changes: ValueChange[] = [];
  for (const path of new Set([...before.keys(), ...after.keys()])) {
    const from = before.get(path) ?? null;
    const to = after.get(path) ?? null;
    if (JSON.stringify(from) !== JSON.stringify(to)) changes.push({ path, from, to });
  }
  return changes.sort((a, b) => a.path.localeCompare(b.path));
}

const LISTED_IN_REASON = 3;

export class AffectedTenantsAudit {
  constructor(
    private readonly audit: AuditLog,
    /** tenants the service knows beyond the documents' own: live ones and those with an audit chain */
    private readonly knownTenants: () => Iterable<string>,
  ) {}

  /** Records the change in each affected tenant's log; returns how many there were. */
  record(previous: PolicyDocument, next: PolicyDocument, what: { actor: string; reason: string; details: Record<string, unknown> }): number {
    const tenants = new Set([
      ...Object.keys(previous.tenants), ...Object.keys(next.tenants),
      ...Object.keys(previous.degradation.tenants), ...Object.keys(next.degradation.tenants),
      ...this.knownTenants(),
    ]);
    tenants.delete(PLATFORM_AUDIT_TENANT);
    let affected = 0;
    for (const tenantId of tenants) {
      const changed = changedValues(previous, next, tenantId);
      if (changed.length === 0) continue;
      affected++;
      const listed = changed.slice(0, LISTED_IN_REASON).map((c) => `${c.path} ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`);
      const more = changed.length > LISTED_IN_REASON ? ` and ${changed.length - LISTED_IN_REASON} more` : '';
      this.audit.record({ tenantId, kind: 'policy_change', actor: what.actor, reason: `${what.reason}: ${listed.join(', ')}${more}`, details: { ...what.details, changed } });
    }
    return affected;
  }
}

/** Audits every successful reload of `file`: in the platform's log, and in each affected tenant's. */
export function auditFileReloads(policy: PolicyStore, file: string, audit: AuditLog, affected: AffectedTenantsAudit): () => void {
  return policy.onChange((document, source, previous) => {
    if (source !== file) return;
    const details = { source: 'file', file };
    const tenants = affected.record(previous, document, { actor: 'policy-file', reason: 'policy file reloaded', details });
    audit.record({ tenantId: PLATFORM_AUDIT_TENANT, kind: 'policy_change', actor: 'policy-file', reason: `policy file reloaded; ${tenants} tenant(s) affected`, details: { ...details, tenantsAffected: tenants } });
  });
}
