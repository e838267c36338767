// What a tenant admin may change about its own tenant: only what makes the protection stricter. One
// table names each key a tenant may touch and which way is stricter; the same table checks a change
// when it is asked for (refusing it with the rule) and lays the tenant's layer over the platform's
// policy (keeping the stricter of the two), so a platform change made later never loosens it either.

import {
  tenantDegradationPolicy,
  withTenantDegradation,
  type DegradationPatch,
  type DegradationPolicy,
} from '../degradation/degradation-schema.js';
import { RUN_METRICS } from '../windows/metric-names.js';
import { effectivePolicy } from './effective-policy.js';
import { mergePatch } from './plain-data.js';
import { buildPolicy } from './resolve-policy.js';
import type { EffectivePolicy, PolicyDocument } from './policy-types.js';

/** Which way is stricter for a key. */
type Stricter = 'lower' | 'true' | 'fewer' | 'more';

/** A tenant admin's own layer: the keys of its policy and degradation entry it tightened. */
export interface Tightening {
  run?: Record<string, number>;
  tenant?: Record<string, number>;
  warnFraction?: number;
  degradation?: DegradationPatch;
}

const THRESHOLD_RULES = Object.fromEntries(
  RUN_METRICS.flatMap((m) => [
    [`run.${m}`, 'lower'],
    [`tenant.${m}`, 'lower'],
  ]),
) as Record<string, Stricter>;

/** Every key a tenant admin may set, and which way it may move. Anything else is the platform's. */
export const TIGHTEN_RULES: Readonly<Record<string, Stricter>> = {
  ...THRESHOLD_RULES,
  // a smaller fraction warns earlier
  warnFraction: 'lower',
  'degradation.quota.requestsPerMinute': 'lower',
  'degradation.quota.tokensPerMinute': 'lower',
  'degradation.quota.requestsBurst': 'lower',
  'degradation.quota.tokensBurst': 'lower',
  'degradation.triggers.latencyP95Ms': 'lower',
  'degradation.triggers.costPerMinuteUsd': 'lower',
  'degradation.consent.required': 'true',
  // consent from a lower tier on covers more switches
  'degradation.consent.fromTier': 'lower',
  'degradation.permittedTiers': 'fewer',
  'degradation.residency.excludedProviders': 'more',
  'degradation.residency.excludedEndpoints': 'more',
  'degradation.residency.excludedRegions': 'more',
};

export interface TighteningRefusal {
  path: string;
  message: string;
  rule: string;
}

/** The tenant's platform-side values a tightening is judged against. */
export interface PlatformBound {
  policy: EffectivePolicy;
  degradation: DegradationPolicy;
}

export function platformBound(platform: PolicyDocument, tenantId: string): PlatformBound {
  return { policy: effectivePolicy(platform, tenantId), degradation: tenantDegradationPolicy(platform.degradation, tenantId) };
}

/**
 * Why `layer` would loosen what the platform set, or undefined. A value equal to the platform's is
 * allowed (it tightens nothing, and loosens nothing). Removing a value is refused: dropping one's own
 * tightening is revertTenantPolicy.
 */
export function refuseLoosening(bound: PlatformBound, layer: Record<string, unknown>): TighteningRefusal | undefined {
  for (const [path, value] of leaves(layer)) {
    const stricter = TIGHTEN_RULES[path];
    if (stricter === undefined) {
      return { path, message: `${path} is set by the platform; a tenant admin may change only ${describeAllowed()}`, rule: `tenant admins may not change ${path}` };
    }
    if (value === null) {
      return { path, message: `${path}: a tenant admin may not remove a limit (revertTenantPolicy drops the tenant's own tightenings)`, rule: 'tenant admins may only tighten' };
    }
    const current = platformValue(bound, path);
    if (!isAtLeastAsStrict(stricter, value, current)) {
      return { path, message: `${path}: ${JSON.stringify(value)} is looser than the platform's ${JSON.stringify(current)}; a tenant admin may only ${describeStricter(stricter)}`, rule: 'tenant admins may only tighten' };
    }
  }
  return undefined;
}

/** The tenant's layer as a policy patch: the stricter of its value and the platform's, key by key. */
export function applyTightening(platform: PolicyDocument, tenantId: string, layer: Tightening, source: string): PolicyDocument {
  const bound = platformBound(platform, tenantId);
  const strictest = new Map<string, unknown>();
  for (const [path, value] of leaves(layer as Record<string, unknown>)) {
    const stricter = TIGHTEN_RULES[path];
    if (stricter === undefined || value === null) continue;
    strictest.set(path, stricterOf(stricter, value, platformValue(bound, path)));
  }
  const overrides: Record<string, unknown> = {};
  const degradation: Record<string, unknown> = {};
  for (const [path, value] of strictest) {
    const keys = path.split('.');
    if (keys[0] === 'degradation') setPath(degradation, keys.slice(1), value);
    else setPath(overrides, keys, value);
  }
  const existing = Object.hasOwn(platform.tenants, tenantId) ? platform.tenants[tenantId] : undefined;
  const tenants = { ...platform.tenants, [tenantId]: { ...existing, overrides: mergePatch(existing?.overrides ?? {}, overrides) } };
  const entry = Object.hasOwn(platform.degradation.tenants, tenantId) ? platform.degradation.tenants[tenantId]! : {};
  const candidate = {
    ...platform,
    tenants,
    degradation: Object.keys(degradation).length === 0 ? platform.degradation : withTenantDegradation(platform.degradation, tenantId, mergePatch(entry, degradation)),
  };
  return buildPolicy(candidate, { source, baseTiers: {} });
}

function platformValue(bound: PlatformBound, path: string): unknown {
  const keys = path.split('.');
  let node: unknown = keys[0] === 'degradation' ? bound.degradation : bound.policy;
  for (const key of keys[0] === 'degradation' ? keys.slice(1) : keys) node = (node as Record<string, unknown> | undefined)?.[key];
  return node;
}

function isAtLeastAsStrict(stricter: Stricter, value: unknown, current: unknown): boolean {
  return JSON.stringify(stricterOf(stricter, value, current)) === JSON.stringify(normalise(stricter, value));
}

function stricterOf(stricter: Stricter, value: unknown, current: unknown): unknown {
  if (current === undefined || current === null) return value;
  switch (stricter) {
    case 'lower':
      return Math.min(value as number, current as number);
    case 'true':
      return (value as boolean) || (current as boolean);
    case 'fewer':
      return normalise(stricter, (value as unknown[]).filter((v) => (current as unknown[]).includes(v)));
    case 'more':
      return normalise(stricter, [...new Set([...(current as unknown[]), ...(value as unknown[])])]);
  }
}

function normalise(stricter: Stricter, value: unknown): unknown {
  return stricter === 'fewer' || stricter === 'more' ? [...new Set(value as unknown[])].sort() : value;
}

function describeStricter(stricter: Stricter): string {
  switch (stricter) {
    case 'lower':
      return 'lower it';
    case 'true':
      return 'switch it on';
    case 'fewer':
      return 'remove entries';
    case 'more':
      return 'add entries';
  }
}

function describeAllowed(): string {
  return 'run and tenant thresholds, warnFraction, and degradation quota, latency and cost triggers, consent, permittedTiers and residency';
}

/** Leaves of a plain object as dotted paths; arrays are leaves. */
function leaves(value: Record<string, unknown>, prefix = ''): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [key, child] of Object.entries(value)) {
    if (child === undefined) continue;
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (child !== null && typeof child === 'object' && !Array.isArray(child)) out.push(...leaves(child as Record<string, unknown>, path));
    else out.push([path, child]);
  }
  return out;
}

function setPath(target: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[keys.at(-1)!] = value;
}
