// Where each value of a tenant's effective policy comes from: the built-in tier, the file, a
// platform run-time change (with its actor and time) or the tenant admin's own tightening. Found by
// replaying the layers one at a time and noting, for every leaf, the last layer that changed it.

import { defaultDegradationSection, tenantDegradationPolicy } from '../degradation/degradation-schema.js';
import { effectivePolicy } from './effective-policy.js';
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
    stages.push({ source, detail: `${recorded.change.kind} #${recorded.seq}`, actor: recorded.actor, changedAt: recorded.at, values: tenantValues(layered.document, tenantId) });
  });

  const final = stages.at(-1)!.values;
  const out: PolicyValue[] = [];
  for (const [path, value] of final) {
    let origin = stages[0]!;
    for (let i = 1; i < stages.length; i++) {
      if (!same(stages[i]!.values.get(path), stages[i - 1]!.values.get(path))) origin = stages[i]!;
    }
    out.push({ path, value, source: origin.source, detail: origin.detail, actor: origin.actor, changedAt: origin.changedAt });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
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
