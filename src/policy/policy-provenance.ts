// Where each value of a tenant's effective policy comes from: the built-in tier, the file, a
// platform run-time change (with its actor and time) or the tenant admin's own tightening. Found by
// replaying the layers one at a time and noting, for every leaf, the last layer that changed it; a
// value a revert puts back is credited to the layer that had set it before.

import { defaultDegradationSection, tenantDegradationPolicy } from '../degradation/degradation-schema.js';
import { effectivePolicy, type PolicyChange } from './effective-policy.js';
import { builtinPolicy } from './load-policy.js';
import type { PolicyDocument } from './policy-types.js';
import { replay, validateLayers, type RecordedChange } from './runtime-policy.js';

export type PolicySource = 'BUILTIN' | 'FILE' | 'RUNTIME' | 'TENANT';

export interface PolicyValue {
  /** dotted key: `run.toolCallsPerMinute`, `degradation.quota.requestsPerMinute` */
  path: string;
  value: unknown;
  source: PolicySource;
  /** which part of the source: `tiers.pro`, `tenants.acme`, `setTenantPolicy #12` */
  detail: string;
  actor: string | null;
  changedAt: number | null;
}

interface Stage {
  source: PolicySource;
  detail: string;
  actor: string | null;
  changedAt: number | null;
  values: Map<string, unknown>;
  restores?: boolean;
}

/** The tenant's policy and degradation values, flattened. */
export function tenantValues(doc: PolicyDocument, tenantId: string): Map<string, unknown> {
  const { tenantId: _id, ...policy } = effectivePolicy(doc, tenantId);
  return flatten({ ...policy, degradation: tenantDegradationPolicy(doc.degradation, tenantId) });
}

/** Every leaf of the tenant's effective policy with the layer it comes from. */
export function policyProvenance(file: PolicyDocument, changes: readonly RecordedChange[], tenantId: string): PolicyValue[] {
  const stages: Stage[] = [];
  const fileTier = effectivePolicy(file, tenantId).tier;
  const builtin = builtinPolicy();
  if (Object.hasOwn(builtin.tiers, fileTier)) {
    const builtinTier = { ...builtin, defaultTier: fileTier, tenants: {}, degradation: defaultDegradationSection() };
    stages.push(stage('BUILTIN', `tier ${fileTier}`, tenantValues(builtinTier, tenantId)));
  }
  // the file's tier and degradation defaults first, then what it says for this tenant
  const withoutTenant = { ...file, tenants: omit(file.tenants, tenantId), degradation: { ...file.degradation, tenants: omit(file.degradation.tenants, tenantId) } };
  stages.push(stage('FILE', `tiers.${effectivePolicy(withoutTenant, tenantId).tier}`, tenantValues(withoutTenant, tenantId)));
  stages.push(stage('FILE', `tenants.${tenantId}`, tenantValues(file, tenantId)));
  replay(file, changes, undefined, (recorded, platform, layers) => {
    // only this tenant's own layer bears on its values
    const own = layers.get(tenantId);
    const layered = validateLayers(platform, own === undefined ? new Map() : new Map([[tenantId, own]]), 'provenance');
    if (!layered.ok) return;
    const source: PolicySource = recorded.change.kind === 'tightenTenantPolicy' ? 'TENANT' : 'RUNTIME';
    const detail = `${recorded.change.kind} #${recorded.seq}`;
    stages.push({ source, detail, actor: recorded.actor, changedAt: recorded.at, values: tenantValues(layered.document, tenantId), restores: isRestore(recorded.change) });
  });

  // each path's values as they changed, with the stage that set them
  const history = new Map<string, { value: unknown; origin: Stage }[]>();
  for (const [i, current] of stages.entries()) {
    for (const [path, value] of current.values) {
      const seen = history.get(path) ?? [];
      const last = seen.at(-1);
      if (i > 0 && last !== undefined && same(last.value, value)) continue;
      // a value put back by a revert belongs to whoever set it before: the file, a tier-wide change
      const restored = current.restores ? seen.findLast((entry) => same(entry.value, value)) : undefined;
      seen.push({ value, origin: restored?.origin ?? current });
      history.set(path, seen);
    }
  }
  const out: PolicyValue[] = [];
  for (const [path, value] of stages.at(-1)!.values) {
    const { origin } = history.get(path)!.at(-1)!;
    out.push({ path, value, source: origin.source, detail: origin.detail, actor: origin.actor, changedAt: origin.changedAt });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** Changes that put the file's (or the platform's) values back rather than set new ones. */
function isRestore(change: PolicyChange): boolean {
  switch (change.kind) {
    case 'revertTenantPolicy':
    case 'removeTenantPolicy':
      return true;
    case 'setTenantDegradation':
    case 'tightenTenantPolicy':
      return change.patch === null;
    default:
      return false;
  }
}

function stage(source: PolicySource, detail: string, values: Map<string, unknown>): Stage {
  return { source, detail, actor: null, changedAt: null, values };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function omit<T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));
}

function flatten(value: Record<string, unknown>, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  for (const [key, child] of Object.entries(value)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (child !== null && typeof child === 'object' && !Array.isArray(child) && Object.keys(child).length > 0) flatten(child as Record<string, unknown>, path, out);
    else out.set(path, child);
  }
  return out;
}
