// What a tenant is held to (its tier with its overrides), and run-time changes to the policy.
// A change never edits a document: it builds the candidate document and sends it through the same
// checks a file goes through (buildPolicy), so a mutation cannot store what the file would refuse,
// and its PolicyError names the same key paths.

import { withTenantDegradation, type DegradationPatch } from '../degradation/degradation-schema.js';
import { deepFreeze, mergePatch } from './plain-data.js';
import { formatKeyPath, PolicyError } from './policy-error.js';
import type { TierPatch } from './policy-schema.js';
import type { EffectivePolicy, PolicyDocument, TenantOverrides } from './policy-types.js';
import { applyOverrides, buildPolicy } from './resolve-policy.js';
import type { Tightening } from './tighten-only.js';

/** Names run-time changes in issues when the caller gives no better name (e.g. the mutation's). */
export const RUNTIME_CHANGE_SOURCE = 'run-time change';

/** The tenant's tier (the document's defaultTier when the tenant is not listed) with its overrides applied. */
export function effectivePolicy(doc: PolicyDocument, tenantId: string): EffectivePolicy {
  const tenant = Object.hasOwn(doc.tenants, tenantId) ? doc.tenants[tenantId] : undefined;
  const tierName = tenant?.tier ?? doc.defaultTier;
  const tier = Object.hasOwn(doc.tiers, tierName) ? doc.tiers[tierName] : undefined;
  if (tier === undefined) {
    // only a document built by hand, around buildPolicy, can get here
    const path = formatKeyPath(tenant === undefined ? ['defaultTier'] : ['tenants', tenantId, 'tier']);
    throw new PolicyError([
      { file: 'policy', line: 0, column: 0, path, message: `unknown tier ${JSON.stringify(tierName)}` },
    ]);
  }
  const merged = tenant === undefined ? tier : applyOverrides(tier, tenant.overrides);
  return deepFreeze({ ...merged, tenantId, tier: tierName });
}

export interface TenantPolicyChange {
  /** the tenant's new tier; absent keeps its tier (the defaultTier for a tenant not yet listed) */
  tier?: string;
  /** replaces all of the tenant's overrides; `{}` clears them; absent keeps them */
  overrides?: TenantOverrides;
  /** laid over the tenant's overrides key by key (null removes a key); applied after `overrides` */
  patch?: TenantOverrides;
}

/** Sets a tenant's tier and/or overrides. Returns the new document; throws PolicyError. */
export function applyTenantPolicy(
  doc: PolicyDocument,
  tenantId: string,
  change: TenantPolicyChange,
  source = RUNTIME_CHANGE_SOURCE,
): PolicyDocument {
  const existing = Object.hasOwn(doc.tenants, tenantId) ? doc.tenants[tenantId] : undefined;
  const { patch, ...rest } = change;
  // unknown keys in `change` are kept so that the strict schema reports them
  const entry: Record<string, unknown> = { ...existing, ...withoutUndefined(rest) };
  if (patch !== undefined) entry.overrides = mergePatch(entry.overrides ?? {}, patch);
  return rebuild({ ...doc, tenants: { ...doc.tenants, [tenantId]: entry } }, source);
}

/** Removes a tenant's entry: it falls back to the defaultTier without overrides. */
export function removeTenantPolicy(
  doc: PolicyDocument,
  tenantId: string,
  source = RUNTIME_CHANGE_SOURCE,
): PolicyDocument {
  if (!Object.hasOwn(doc.tenants, tenantId)) return doc;
  const tenants = Object.fromEntries(Object.entries(doc.tenants).filter(([id]) => id !== tenantId));
  return rebuild({ ...doc, tenants }, source);
}

/**
 * Lays `patch` over the tier, as a file's tier is laid over the built-in one: set fields replace,
 * a null threshold removes it, `extends` starts again from another tier. A new tier name creates
 * the tier (it must then set every field, or name `extends`). Tenants on the tier are checked
 * against the result. Tiers that extended this one in the file keep what they resolved to then.
 */
export function applyTierThresholds(
  doc: PolicyDocument,
  tier: string,
  patch: TierPatch,
  source = RUNTIME_CHANGE_SOURCE,
): PolicyDocument {
  // the current tiers are the base the patch is laid over, as the built-ins are for a file
  return buildPolicy({ ...doc, tiers: { [tier]: patch } }, { source, baseTiers: doc.tiers });
}

/** Sets the tier of tenants that are not listed. */
export function applyDefaultTier(doc: PolicyDocument, tier: string, source = RUNTIME_CHANGE_SOURCE): PolicyDocument {
  return rebuild({ ...doc, defaultTier: tier }, source);
}

/** Restores a tenant's entries (policy and degradation) to what the file says. */
export function revertTenantPolicy(doc: PolicyDocument, file: PolicyDocument, tenantId: string, source = RUNTIME_CHANGE_SOURCE): PolicyDocument {
  const tenants = Object.fromEntries(Object.entries(doc.tenants).filter(([id]) => id !== tenantId));
  if (Object.hasOwn(file.tenants, tenantId)) tenants[tenantId] = file.tenants[tenantId]!;
  return revertTenantDegradation({ ...doc, tenants }, file, tenantId, source);
}

/** A run-time change as one value, for callers that dispatch on its kind (GraphQL resolvers, the audit log). */
export type PolicyChange =
  | { kind: 'setTenantPolicy'; tenantId: string; tier?: string; overrides?: TenantOverrides; patch?: TenantOverrides }
  | { kind: 'removeTenantPolicy'; tenantId: string }
  | { kind: 'setTierThresholds'; tier: string; patch: TierPatch }
  | { kind: 'setDefaultTier'; tier: string }
  /** merged into the tenant's degradation entry key by key; null restores the file's entry */
  | { kind: 'setTenantDegradation'; tenantId: string; patch: DegradationPatch | null }
  /** the tenant's policy and degradation entries back to the file's, its own tightenings dropped */
  | { kind: 'revertTenantPolicy'; tenantId: string }
  /** a tenant admin's layer, merged into what it set before; null drops it (see tighten-only.ts) */
  | { kind: 'tightenTenantPolicy'; tenantId: string; patch: Tightening | null };

export type PolicyChangeResult = { ok: true; document: PolicyDocument } | { ok: false; error: PolicyError };

/** Applies a change to `doc` through the file's checks; a refused change comes back as its PolicyError. */
export function validatePolicyChange(
  doc: PolicyDocument,
  change: PolicyChange,
  file: PolicyDocument,
  source = RUNTIME_CHANGE_SOURCE,
): PolicyChangeResult {
  try {
    return { ok: true, document: applyPolicyChange(doc, change, file, source) };
  } catch (error) {
    if (error instanceof PolicyError) return { ok: false, error };
    throw error;
  }
}

/**
 * Applies a platform change to `doc` (`file` is what the policy file says, for changes that restore
 * it); throws PolicyError. A tenant's tightening is not applied here but laid over the result of all
 * platform changes (RuntimePolicy), so that it stays the stricter whatever the platform does later.
 */
export function applyPolicyChange(
  doc: PolicyDocument,
  change: PolicyChange,
  file: PolicyDocument,
  source = RUNTIME_CHANGE_SOURCE,
): PolicyDocument {
  switch (change.kind) {
    case 'setTenantPolicy': {
      const { kind: _kind, tenantId, ...tenantChange } = change;
      return applyTenantPolicy(doc, tenantId, tenantChange, source);
    }
    case 'removeTenantPolicy':
      return removeTenantPolicy(doc, change.tenantId, source);
    case 'setTierThresholds':
      return applyTierThresholds(doc, change.tier, change.patch, source);
    case 'setDefaultTier':
      return applyDefaultTier(doc, change.tier, source);
    case 'setTenantDegradation': {
      if (change.patch === null) return revertTenantDegradation(doc, file, change.tenantId, source);
      const entry = Object.hasOwn(doc.degradation.tenants, change.tenantId) ? doc.degradation.tenants[change.tenantId]! : {};
      return rebuild({ ...doc, degradation: withTenantDegradation(doc.degradation, change.tenantId, mergePatch(entry, change.patch)) }, source);
    }
    case 'revertTenantPolicy':
      return revertTenantPolicy(doc, file, change.tenantId, source);
    case 'tightenTenantPolicy':
      throw new Error('a tightening is laid over the platform policy by RuntimePolicy, not applied as a platform change');
  }
}

function revertTenantDegradation(doc: PolicyDocument, file: PolicyDocument, tenantId: string, source: string): PolicyDocument {
  const fileEntry = Object.hasOwn(file.degradation.tenants, tenantId) ? file.degradation.tenants[tenantId]! : null;
  return rebuild({ ...doc, degradation: withTenantDegradation(doc.degradation, tenantId, fileEntry) }, source);
}

// A resolved document is a valid file whose tiers are complete: it is checked again as one, over no base.
function rebuild(candidate: unknown, source: string): PolicyDocument {
  return buildPolicy(candidate, { source, baseTiers: {} });
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}
