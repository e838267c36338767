import { describe, expect, it } from 'vitest';
import { tenantDegradationPolicy } from '../../src/degradation/degradation-schema.js';
import { effectivePolicy, validatePolicyChange } from '../../src/policy/effective-policy.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { PolicyDocument } from '../../src/policy/policy-types.js';
import { validateLayers } from '../../src/policy/runtime-policy.js';
import { platformBound, refuseLoosening, type Tightening } from '../../src/policy/tighten-only.js';
import { RUN_METRICS } from '../../src/windows/metric-names.js';
import { yaml } from './policy-test-helpers.js';

// Every key a tenant admin may move, with a value just looser than the platform's (refused), the
// platform's own (allowed, it changes nothing) and one just stricter (allowed, and in force once laid
// over the platform's policy). The platform's values are written in the file below.

const BOUND = 100;
const RATIO = 0.5;
const thresholds = RUN_METRICS.map((m) => `${m}: ${m === 'errorRatio' ? RATIO : BOUND}`).join(', ');

const file = parsePolicy(
  yaml(`
    tenants:
      acme:
        tier: free
        overrides:
          run: { ${thresholds} }
          tenant: { ${thresholds} }
          warnFraction: 0.6
      calm: { tier: free }
    degradation:
      defaults:
        tiers:
          - { tier: 0, provider: openai, model: gpt-4o, region: us }
          - { tier: 1, provider: azure.ai.openai, model: gpt-4o, region: eu }
          - { tier: 2, provider: openai, model: gpt-4o-mini }
      tenants:
        acme:
          quota: { requestsPerMinute: 60, tokensPerMinute: 6000, requestsBurst: 10, tokensBurst: 1000 }
          triggers: { latencyP95Ms: 4000, costPerMinuteUsd: 2 }
          consent: { required: true, fromTier: 2 }
          permittedTiers: [0, 1, 2, 4]
          residency: { excludedProviders: [azure.ai.openai], excludedEndpoints: [eu.example.com], excludedRegions: [cn] }
  `),
  'tighten-only.yaml',
);

/** A layer setting one dotted path. */
function layerAt(path: string, value: unknown): Tightening {
  const keys = path.split('.');
  const root: Record<string, unknown> = {};
  let node = root;
  for (const key of keys.slice(0, -1)) node = (node[key] = {}) as Record<string, unknown>;
  node[keys.at(-1)!] = value;
  return root as Tightening;
}

/** The value at a dotted path of what is in force for acme once `layer` is laid over `platform`. */
function inForce(platform: PolicyDocument, tenantId: string, layer: Tightening, path: string): unknown {
  const layered = validateLayers(platform, new Map([[tenantId, layer]]), 'test');
  if (!layered.ok) throw layered.error;
  const keys = path.split('.');
  let node: unknown = keys[0] === 'degradation' ? tenantDegradationPolicy(layered.document.degradation, tenantId) : effectivePolicy(layered.document, tenantId);
  for (const key of keys[0] === 'degradation' ? keys.slice(1) : keys) node = (node as Record<string, unknown>)[key];
  return node;
}

const refused = (path: string, value: unknown, tenantId = 'acme') => refuseLoosening(platformBound(file, tenantId), layerAt(path, value) as Record<string, unknown>);

/** [path, looser, the platform's, stricter] */
const NUMERIC: [string, number, number, number][] = [
  ...RUN_METRICS.flatMap((m): [string, number, number, number][] => {
    const [above, at, below] = m === 'errorRatio' ? [RATIO + 0.01, RATIO, RATIO - 0.01] : [BOUND + 1, BOUND, BOUND - 1];
    return [
      [`run.${m}`, above, at, below],
      [`tenant.${m}`, above, at, below],
    ];
  }),
  ['warnFraction', 0.61, 0.6, 0.59],
  ['degradation.quota.requestsPerMinute', 61, 60, 59],
  ['degradation.quota.tokensPerMinute', 6001, 6000, 5999],
  ['degradation.quota.requestsBurst', 11, 10, 9],
  ['degradation.quota.tokensBurst', 1001, 1000, 999],
  ['degradation.triggers.latencyP95Ms', 4001, 4000, 3999],
  ['degradation.triggers.costPerMinuteUsd', 2.01, 2, 1.99],
  // consent asked from a lower tier on covers more switches
  ['degradation.consent.fromTier', 3, 2, 1],
];

describe('tighten-only: each number just above, at and just below the platform bound', () => {
  for (const [path, above, at, below] of NUMERIC) {
    it(path, () => {
      expect(refused(path, above)).toMatchObject({ path, rule: 'tenant admins may only tighten' });
      expect(refused(path, above)!.message).toContain(`looser than the platform's ${at}`);
      expect(refused(path, at)).toBeUndefined();
      expect(refused(path, below)).toBeUndefined();
      expect(inForce(file, 'acme', layerAt(path, below), path)).toBe(below);
    });
  }
});

describe('tighten-only: consent, permitted tiers and residency', () => {
  it('consent may be required, never waived', () => {
    expect(refused('degradation.consent.required', false)).toMatchObject({ path: 'degradation.consent.required' });
    expect(refused('degradation.consent.required', true)).toBeUndefined();
    // calm has no consent requirement in the file: its admin may add one
    expect(refused('degradation.consent.required', true, 'calm')).toBeUndefined();
    expect(inForce(file, 'calm', layerAt('degradation.consent.required', true), 'degradation.consent.required')).toBe(true);
  });

  it('permitted tiers may only shrink', () => {
    expect(refused('degradation.permittedTiers', [0, 1, 2, 3, 4])).toMatchObject({ path: 'degradation.permittedTiers' });
    // the same set in another order is not looser
    expect(refused('degradation.permittedTiers', [4, 2, 1, 0])).toBeUndefined();
    expect(refused('degradation.permittedTiers', [0, 4])).toBeUndefined();
    expect(inForce(file, 'acme', layerAt('degradation.permittedTiers', [0, 4]), 'degradation.permittedTiers')).toEqual([0, 4]);
  });

  for (const key of ['excludedProviders', 'excludedEndpoints', 'excludedRegions'] as const) {
    it(`residency.${key} may only grow`, () => {
      const current = tenantDegradationPolicy(file.degradation, 'acme').residency[key];
      expect(current).toHaveLength(1);
      expect(refused(`degradation.residency.${key}`, [])).toMatchObject({ path: `degradation.residency.${key}` });
      expect(refused(`degradation.residency.${key}`, current)).toBeUndefined();
      const more = [...current, 'extra-entry'];
      expect(refused(`degradation.residency.${key}`, more)).toBeUndefined();
      expect(inForce(file, 'acme', layerAt(`degradation.residency.${key}`, more), `degradation.residency.${key}`)).toEqual([...more].sort());
    });
  }
});

describe('tighten-only: what a tenant may not touch at all', () => {
  for (const [path, value] of [
    ['tier', 'enterprise'],
    ['breaker.cooldownMs', 1],
    ['breaker.probeSteps', 100],
    ['errorRatio.minCalls', 1000],
    ['degradation.enabled', false],
    ['degradation.notify', false],
    ['degradation.consent.timeoutMs', 1],
    ['degradation.tiers', []],
    ['degradation.recovery.probeCalls', 1],
  ] as const) {
    it(`${path} is the platform's`, () => {
      expect(refused(path, value)).toMatchObject({ path, rule: `tenant admins may not change ${path}` });
    });
  }

  it('removing a limit is refused, whatever the limit', () => {
    for (const path of ['run.toolCallsPerMinute', 'tenant.tokenVelocity60s', 'degradation.quota.requestsPerMinute', 'degradation.permittedTiers']) {
      expect(refused(path, null)).toMatchObject({ path, rule: 'tenant admins may only tighten' });
    }
  });

  it('a limit the platform leaves unset may be added at any value', () => {
    // the free tier has no tenant-wide costUsd
    expect(effectivePolicy(file, 'calm').tenant.costUsd).toBeUndefined();
    expect(refused('tenant.costUsd', 1e9, 'calm')).toBeUndefined();
    expect(inForce(file, 'calm', layerAt('tenant.costUsd', 5), 'tenant.costUsd')).toBe(5);
  });
});

describe("the tenant's layer over later platform changes", () => {
  const tightened: Tightening = { run: { toolCallsPerMinute: 20 }, degradation: { quota: { requestsPerMinute: 30 } } };

  function platformChange(patch: Record<string, unknown>): PolicyDocument {
    const result = validatePolicyChange(file, { kind: 'setTenantPolicy', tenantId: 'acme', patch } as never, file);
    if (!result.ok) throw result.error;
    return result.document;
  }

  it('a platform loosening later leaves the tenant at its own, stricter value', () => {
    const loosened = platformChange({ run: { toolCallsPerMinute: 10_000 } });
    expect(effectivePolicy(loosened, 'acme').run.toolCallsPerMinute).toBe(10_000);
    expect(inForce(loosened, 'acme', tightened, 'run.toolCallsPerMinute')).toBe(20);
  });

  it('a platform tightening below the tenant wins', () => {
    const tighter = platformChange({ run: { toolCallsPerMinute: 5 } });
    expect(inForce(tighter, 'acme', tightened, 'run.toolCallsPerMinute')).toBe(5);
  });

  it("a platform dropping its override (back to the free tier's 30) leaves the tenant's", () => {
    const removed = platformChange({ run: { toolCallsPerMinute: null } });
    expect(effectivePolicy(removed, 'acme').run.toolCallsPerMinute).toBe(30);
    expect(inForce(removed, 'acme', tightened, 'run.toolCallsPerMinute')).toBe(20);
  });

  it("the layer changes only the keys it names, and only the tenant's", () => {
    const layered = validateLayers(file, new Map([['acme', tightened]]), 'test');
    if (!layered.ok) throw layered.error;
    const before = { policy: effectivePolicy(file, 'acme'), degradation: tenantDegradationPolicy(file.degradation, 'acme') };
    const after = { policy: effectivePolicy(layered.document, 'acme'), degradation: tenantDegradationPolicy(layered.document.degradation, 'acme') };
    expect(after).toEqual({
      policy: { ...before.policy, run: { ...before.policy.run, toolCallsPerMinute: 20 } },
      degradation: { ...before.degradation, quota: { ...before.degradation.quota, requestsPerMinute: 30 } },
    });
    expect(effectivePolicy(layered.document, 'calm')).toEqual(effectivePolicy(file, 'calm'));
  });
});
