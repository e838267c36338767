import type { ClickHouseClient } from '@clickhouse/client';
import { PLATFORM_AUDIT_TENANT } from '../audit/audit-event.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../app/log.js';
import { queryRows } from '../storage/clickhouse.js';
import { ChangeRateLimit } from './change-rate-limit.js';
import { compactChanges } from './compact-changes.js';
import { validatePolicyChange, type PolicyChange, type PolicyChangeResult } from './effective-policy.js';
import { mergePatch } from './plain-data.js';
import type { AffectedTenantsAudit } from './policy-change-audit.js';
import { PolicyError } from './policy-error.js';
import type { PolicyStore } from './policy-store.js';
import type { PolicyDocument } from './policy-types.js';
import { applyTightening, platformBound, refuseLoosening, type PlatformBound, type Tightening, type TighteningRefusal } from './tighten-only.js';

export type ChangeOutcome =
  | { ok: true; document: PolicyDocument }
  | { ok: false; error: PolicyError }
  /** a tenant admin's change that would loosen the platform's policy */
  | { ok: false; refusal: TighteningRefusal }
  /** the tenant changed its policy too often; it may try again after this many seconds */
  | { ok: false; retryAfterSeconds: number };

/** A change as stored: who made it and when. */
export interface RecordedChange {
  seq: number;
  actor: string;
  at: number;
  change: PolicyChange;
}

/**
 * Run-time policy changes: validated exactly like the file, persisted in `policy_changes`, recorded
 * in the audit log with the actor, and laid over the file's policy again after every file reload
 * and at start. Platform changes are applied in order; each tenant admin's tightenings form one
 * layer laid over the result, keeping the stricter value key by key, and are replayed folded into
 * one change per tenant. Changes are applied one at a time: each tenant's in order, tenants in turn.
 */
export class RuntimePolicy {
  #changes: RecordedChange[] = [];
  #seq = 0;
  /** changes waiting to be applied, one lane per tenant (and one for the platform's), taken in turn */
  readonly #lanes = new Map<string, (() => Promise<void>)[]>();
  #applying = false;
  #file: PolicyDocument;
  // the file with the platform's changes, before tenant admins' tightenings
  #platform: PolicyDocument;
  readonly #layers = new Map<string, Tightening>();
  readonly #rateLimit: ChangeRateLimit;

  constructor(
    private readonly store: PolicyStore,
    private readonly client: ClickHouseClient,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    /** where a change that is not one tenant's is also recorded, in each tenant it affects */
    private readonly affected?: AffectedTenantsAudit,
    private readonly now: () => number = Date.now,
  ) {
    this.#file = store.current();
    this.#platform = this.#file;
    this.#rateLimit = new ChangeRateLimit(now);
    store.setOverlay((fileDocument) => this.#overlay(fileDocument));
  }

  /** Reads the persisted changes and puts file + changes in force. */
  async load(fileDocument: PolicyDocument): Promise<void> {
    // an alias named Seq would order the rows as text (10 before 9)
    const rows = await queryRows<{ SeqText: string; Actor: string; At: string; Change: string }>(
      this.client,
      'SELECT toString(Seq) AS SeqText, Actor, toString(toUnixTimestamp64Milli(ChangedAt)) AS At, Change FROM policy_changes ORDER BY Seq',
    );
    this.#changes = compactChanges(rows.map((r) => ({ seq: Number(r.SeqText), actor: r.Actor, at: Number(r.At), change: JSON.parse(r.Change) as PolicyChange })));
    this.#seq = rows.length === 0 ? 0 : Number(rows.at(-1)!.SeqText);
    this.store.replace(this.#overlay(fileDocument), 'start-up');
  }

  /** What the policy file says, without run-time changes. */
  fileDocument(): PolicyDocument {
    return this.#file;
  }

  /** The changes in force, oldest first, each tenant's tightenings folded into one (compact-changes.ts). */
  changes(): readonly RecordedChange[] {
    return this.#changes;
  }

  /** The tenant's values a tenant admin's tightening is judged against. */
  platformBound(tenantId: string): PlatformBound {
    return platformBound(this.#platform, tenantId);
  }

  /** Validates, persists, audits and applies one change; a refused change changes nothing. */
  change(change: PolicyChange, actor: string): Promise<ChangeOutcome> {
    // counted when asked, not when applied: a burst of concurrent requests is one burst
    const retryAfterSeconds = 'tenantId' in change ? this.#rateLimit.take(change.tenantId) : undefined;
    if (retryAfterSeconds !== undefined) return Promise.resolve({ ok: false, retryAfterSeconds });
    return new Promise((resolve, reject) => {
      const lane = 'tenantId' in change ? change.tenantId : PLATFORM_AUDIT_TENANT;
      const waiting = this.#lanes.get(lane) ?? [];
      waiting.push(() => this.#apply(change, actor).then(resolve, reject));
      this.#lanes.set(lane, waiting);
      void this.#applyWaiting();
    });
  }

  /** Applies the waiting changes one at a time, a tenant's in order, one tenant's after another's: a tenant's burst delays another's change by one change, not by the burst. */
  async #applyWaiting(): Promise<void> {
    if (this.#applying) return;
    this.#applying = true;
    try {
      while (this.#lanes.size > 0) {
        for (const [lane, waiting] of this.#lanes) {
          const next = waiting.shift()!;
          if (waiting.length === 0) this.#lanes.delete(lane);
          await next();
        }
      }
    } finally {
      this.#applying = false;
    }
  }

  async #apply(change: PolicyChange, actor: string): Promise<ChangeOutcome> {
    let platform = this.#platform;
    const layers = new Map(this.#layers);
    if (change.kind === 'tightenTenantPolicy') {
      if (change.patch !== null) {
        const malformed = checkShape(platform, change.tenantId, change.patch, this.#file);
        if (malformed !== undefined) return malformed;
        const refusal = refuseLoosening(platformBound(platform, change.tenantId), change.patch as Record<string, unknown>);
        if (refusal !== undefined) return { ok: false, refusal };
      }
      addLayer(layers, change);
    } else {
      const result = validatePolicyChange(platform, change, this.#file);
      if (!result.ok) return result;
      platform = result.document;
      if (change.kind === 'revertTenantPolicy') layers.delete(change.tenantId);
    }
    const layered = validateLayers(platform, layers, change.kind);
    if (!layered.ok) return layered;
    const seq = this.#seq + 1;
    await this.client.insert({
      table: 'policy_changes',
      values: [{ Seq: seq, Actor: actor, Kind: change.kind, TenantId: 'tenantId' in change ? change.tenantId : '', Change: JSON.stringify(change) }],
      format: 'JSONEachRow',
    });
    this.#seq = seq;
    const recorded = { seq, actor, at: this.now(), change };
    this.#changes = change.kind === 'tightenTenantPolicy' || change.kind === 'revertTenantPolicy' ? compactChanges([...this.#changes, recorded]) : [...this.#changes, recorded];
    this.#platform = platform;
    this.#layers.clear();
    for (const [tenantId, layer] of layers) this.#layers.set(tenantId, layer);
    const previous = this.store.current();
    this.store.replace(layered.document, `${change.kind} by ${actor}`);
    const tenantsAffected = 'tenantId' in change ? undefined : this.affected?.record(previous, this.store.current(), { actor, reason: describeChange(change), details: { change, platformSeq: seq } });
    await this.audit.append({
      tenantId: 'tenantId' in change ? change.tenantId : PLATFORM_AUDIT_TENANT,
      kind: 'policy_change',
      actor,
      reason: describeChange(change),
      details: { change, ...(tenantsAffected === undefined ? {} : { tenantsAffected }) },
    });
    return layered;
  }

  #overlay(fileDocument: PolicyDocument): PolicyDocument {
    this.#file = fileDocument;
    const { platform, layers } = replay(fileDocument, this.#changes, (change, problem) =>
      // The file may have removed what a change refers to (a tier, say): the change is skipped, said once per reload.
      this.log.warn({ change: change.kind, problem }, 'a run-time policy change no longer applies to the file and was skipped'),
    );
    this.#platform = platform;
    this.#layers.clear();
    for (const [tenantId, layer] of layers) this.#layers.set(tenantId, layer);
    const layered = validateLayers(platform, layers, 'reload');
    if (layered.ok) return layered.document;
    this.log.warn({ problem: layered.error.message }, "a tenant's tightening no longer applies to the file and was skipped");
    return platform;
  }
}

/**
 * The file with `changes` replayed over it: the platform's document and each tenant's tightening
 * layer. A change that no longer applies is passed to `skipped` and left out.
 */
export function replay(
  file: PolicyDocument,
  changes: readonly RecordedChange[],
  skipped: (change: PolicyChange, problem: string) => void = () => undefined,
  /** called after each change that applied */
  applied: (recorded: RecordedChange, platform: PolicyDocument, layers: ReadonlyMap<string, Tightening>) => void = () => undefined,
): { platform: PolicyDocument; layers: Map<string, Tightening> } {
  let platform = file;
  const layers = new Map<string, Tightening>();
  for (const recorded of changes) {
    const { change } = recorded;
    if (change.kind === 'tightenTenantPolicy') {
      addLayer(layers, change);
    } else {
      // a revert drops the tenant's tightenings even where the file no longer takes its platform part
      if (change.kind === 'revertTenantPolicy') layers.delete(change.tenantId);
      const result = validatePolicyChange(platform, change, file);
      if (!result.ok) {
        skipped(change, result.error.message);
        continue;
      }
      platform = result.document;
    }
    applied(recorded, platform, layers);
  }
  return { platform, layers };
}

/** The file's own error for a tightening that is not even a valid policy (a negative limit, a string), or undefined. */
function checkShape(platform: PolicyDocument, tenantId: string, patch: Tightening, file: PolicyDocument): ChangeOutcome | undefined {
  // keys a tenant may not set at all (tier, breaker) are left to refuseLoosening, to be refused as the platform's
  const { degradation, run, tenant, warnFraction } = patch;
  const overrides = { ...(run ? { run } : {}), ...(tenant ? { tenant } : {}), ...(warnFraction !== undefined ? { warnFraction } : {}) };
  const asPlatform: PolicyChange[] = [
    ...(Object.keys(overrides).length > 0 ? [{ kind: 'setTenantPolicy', tenantId, patch: overrides } as PolicyChange] : []),
    ...(degradation !== undefined ? [{ kind: 'setTenantDegradation', tenantId, patch: degradation } as PolicyChange] : []),
  ];
  for (const change of asPlatform) {
    const result = validatePolicyChange(platform, change, file);
    if (!result.ok) return result;
  }
  return undefined;
}

function addLayer(layers: Map<string, Tightening>, change: Extract<PolicyChange, { kind: 'tightenTenantPolicy' }>): void {
  if (change.patch === null) layers.delete(change.tenantId);
  else layers.set(change.tenantId, mergePatch(layers.get(change.tenantId) ?? {}, change.patch));
}

/** The platform's document with every tenant's tightening laid over it. */
export function validateLayers(platform: PolicyDocument, layers: ReadonlyMap<string, Tightening>, source: string): PolicyChangeResult {
  try {
    let document = platform;
    for (const [tenantId, layer] of layers) document = applyTightening(document, tenantId, layer, source);
    return { ok: true, document };
  } catch (error) {
    if (error instanceof PolicyError) return { ok: false, error };
    throw error;
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
      return `tenant ${change.tenantId} degradation policy ${change.patch === null ? 'back to the file' : 'changed'}`;
    case 'revertTenantPolicy':
      return `tenant ${change.tenantId} policy back to the file`;
    case 'tightenTenantPolicy':
      return `tenant ${change.tenantId} tightened its own limits${change.patch === null ? ' (tightenings dropped)' : ''}`;
  }
}
