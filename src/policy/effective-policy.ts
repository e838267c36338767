// What a tenant is held to (its tier with its overrides), and run-time changes to the policy.
// A change never edits a document: it builds the candidate document and sends it through the same
// checks a file goes through (buildPolicy), so a mutation cannot store what the file would refuse,
// and its PolicyError names the same key paths.

import { withTenantDegradation, type DegradationPatch } from '../degradation/degradation-schema.js';
import { deepFreeze } from './plain-data.js';
import { formatKeyPath, PolicyError } from './policy-error.js';
import type { TierPatch } from './policy-schema.js';
import type { EffectivePolicy, PolicyDocument, TenantOverrides } from './policy-types.js';
import { applyOverrides, buildPolicy } from './resolve-policy.js';

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
}

/** Sets a tenant's tier and/or overrides. Returns the new document; throws PolicyError. */
export function applyTenantPolicy(
  doc: PolicyDocument,
  tenantId: string,
  change: TenantPolicyChange,
  source = RUNTIME_CHANGE_SOURCE,
): PolicyDocument {
  const existing = Object.hasOwn(doc.tenants, tenantId) ? doc.tenants[tenantId] : undefined;
  // unknown keys in `change` are kept so that the strict schema reports them
  const entry = { ...existing, ...withoutUndefined(change) };
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

/** A run-time change as one value, for callers that dispatch on its kind (GraphQL resolvers, the audit log). */
export type PolicyChange =
  | { kind: 'setTenantPolicy'; tenantId: string; tier?: string; overrides?: TenantOverrides }
  | { kind: 'removeTenantPolicy'; tenantId: string }
  | { kind: 'setTierThresholds'; tier: string; patch: TierPatch }
  | { kind: 'setDefaultTier'; tier: string }
  | { kind: 'setTenantDegradation'; tenantId: string; patch: DegradationPatch | null };

export type PolicyChangeResult = { ok: true; document: PolicyDocument } | { ok: false; error: PolicyError };

/** Applies a change to `doc` through the file's checks; a refused change comes back as its PolicyError. */
export function validatePolicyChange(
  doc: PolicyDocument,
  change: PolicyChange,
  source = RUNTIME_CHANGE_SOURCE,
): PolicyChangeResult {
  try {
    return { ok: true, document: applyPolicyChange(doc, change, source) };
  } catch (error) {
    if (error instanceof PolicyError) return { ok: false, error };
    throw error;
  }
}

/** Applies a change to `doc`; throws PolicyError. */
export function applyPolicyChange(
  doc: PolicyDocument,
  change: PolicyChange,
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
    case 'setTenantDegradation':
      return rebuild({ ...doc, degradation: withTenantDegradation(doc.degradation, change.tenantId, change.patch) }, source);
  }
}

// A resolved document is a valid file whose tiers are complete: it is checked again as one, over no base.
function rebuild(candidate: unknown, source: string): PolicyDocument {
  return buildPolicy(candidate, { source, baseTiers: {} });
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}
