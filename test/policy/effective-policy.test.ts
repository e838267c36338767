import { describe, expect, it } from 'vitest';
import { BUILTIN_TIERS } from '../../src/policy/builtin-tiers.js';
import {
  applyDefaultTier,
  applyTenantPolicy,
  applyTierThresholds,
  effectivePolicy,
  removeTenantPolicy,
  validatePolicyChange,
} from '../../src/policy/effective-policy.js';
import { builtinPolicy, parsePolicy } from '../../src/policy/load-policy.js';
import { validatePolicyDocument } from '../../src/policy/resolve-policy.js';
import { policyIssues, yaml } from './policy-test-helpers.js';

const doc = parsePolicy(
  yaml(`
    defaultTier: free
    tiers:
      my-custom-tier:
        warnFraction: 0.7
        run: { stepCount: 42, toolCallsPerMinute: 7 }
        tenant: {}
        breaker: { cooldownMs: 1000, maxCooldownMs: 8000, cooldownMultiplier: 1.5, probeSteps: 2 }
        errorRatio: { minCalls: 5, lastN: 10 }
      gold:
        extends: pro
        run: { stepCount: 9000 }
    tenants:
      acme:
        tier: pro
        overrides:
          run: { toolCallsPerMinute: 500, costUsd: null }
          breaker: { cooldownMs: 5000 }
          warnFraction: 0.6
      custom-co:
        tier: my-custom-tier
      goldie:
        tier: gold
  `),
  'breakwater.yaml',
);

describe('effectivePolicy', () => {
  it('lays a tenant overrides over its tier', () => {
    const acme = effectivePolicy(doc, 'acme');
    const pro = BUILTIN_TIERS.pro!;
    expect(acme.tenantId).toBe('acme');
    expect(acme.tier).toBe('pro');
    expect(acme.run.toolCallsPerMinute).toBe(500);
    expect(acme.run.stepCount).toBe(pro.run.stepCount);
    expect(acme.run).not.toHaveProperty('costUsd'); // null removed the tier's threshold
    expect(acme.breaker).toEqual({ ...pro.breaker, cooldownMs: 5000 });
    expect(acme.errorRatio).toEqual(pro.errorRatio);
    expect(acme.tenant).toEqual(pro.tenant);
    expect(acme.warnFraction).toBe(0.6);
  });

  it('gives unlisted tenants the default tier', () => {
    const stranger = effectivePolicy(doc, 'stranger');
    expect(stranger).toEqual({ ...BUILTIN_TIERS.free, tenantId: 'stranger', tier: 'free' });
  });

  it('supports custom tiers, complete or extending another', () => {
    const custom = effectivePolicy(doc, 'custom-co');
    expect(custom.tier).toBe('my-custom-tier');
    expect(custom.run).toEqual({ stepCount: 42, toolCallsPerMinute: 7 });
    expect(custom.tenant).toEqual({});
    expect(custom.breaker.maxCooldownMs).toBe(8000);

    const goldie = effectivePolicy(doc, 'goldie');
    expect(goldie.run).toEqual({ ...BUILTIN_TIERS.pro!.run, stepCount: 9000 });
    expect(goldie.breaker).toEqual(BUILTIN_TIERS.pro!.breaker);
  });

  it('does not let a reader edit the policy', () => {
    const acme = effectivePolicy(doc, 'acme');
    expect(Object.isFrozen(acme)).toBe(true);
    expect(Object.isFrozen(acme.run)).toBe(true);
    expect(doc.tiers.pro?.run.costUsd).toBe(BUILTIN_TIERS.pro!.run.costUsd);
  });

  it('ignores inherited property names as tenant ids', () => {
    expect(effectivePolicy(doc, 'constructor').tier).toBe('free');
    expect(effectivePolicy(doc, '__proto__').tier).toBe('free');
  });
});

describe('run-time changes', () => {
  it('sets a tenant tier and overrides, leaving the old document as it was', () => {
    const next = applyTenantPolicy(doc, 'acme', { tier: 'enterprise' });
    expect(next).not.toBe(doc);
    expect(next.tenants.acme?.tier).toBe('enterprise');
    expect(next.tenants.acme?.overrides).toEqual(doc.tenants.acme?.overrides); // kept
    expect(doc.tenants.acme?.tier).toBe('pro');

    const cleared = applyTenantPolicy(next, 'acme', { overrides: {} });
    expect(effectivePolicy(cleared, 'acme').run).toEqual(BUILTIN_TIERS.enterprise!.run);

    const added = applyTenantPolicy(doc, 'newco', { overrides: { run: { stepCount: 3 } } });
    expect(added.tenants.newco).toEqual({ tier: 'free', overrides: { run: { stepCount: 3 } } });
  });

  it('refuses an unknown tier with the tenant key path', () => {
    const issues = policyIssues(() => applyTenantPolicy(doc, 'acme', { tier: 'platinum' }, 'mutation setTenantPolicy'));
    expect(issues).toEqual([
      {
        file: 'mutation setTenantPolicy',
        line: 0,
        column: 0,
        path: 'tenants.acme.tier',
        message: expect.stringMatching(/^unknown tier "platinum"/),
      },
    ]);
  });

  it('refuses bad overrides with the same messages as the file', () => {
    const issues = policyIssues(() =>
      applyTenantPolicy(doc, 'acme', {
        overrides: { run: { stepCount: -1 }, breaker: { cooldownMs: 10_000_000 }, bogus: 1 } as never,
      }),
    );
    expect(issues.map((issue) => `${issue.path}: ${issue.message}`)).toEqual([
      'tenants.acme.overrides.run.stepCount: must be a positive whole number',
      'tenants.acme.overrides.bogus: unknown key; expected one of: run, tenant, breaker, errorRatio, warnFraction',
    ]);
    // with the shape fixed, the merged result is checked too
    const merged = policyIssues(() => applyTenantPolicy(doc, 'acme', { overrides: { breaker: { cooldownMs: 10_000_000 } } }));
    expect(merged[0]?.path).toBe('tenants.acme.overrides.breaker.cooldownMs');
    expect(merged[0]?.message).toMatch(/must not exceed maxCooldownMs/);
  });

  it('refuses a tenant id outside the allowed alphabet', () => {
    const issues = policyIssues(() => applyTenantPolicy(doc, 'bad id!', { tier: 'pro' }));
    expect(issues[0]?.path).toBe('tenants["bad id!"]');
  });

  it('patches a tier and checks the tenants on it', () => {
    const next = applyTierThresholds(doc, 'pro', { run: { stepCount: 10, durationSeconds: null } });
    expect(next.tiers.pro?.run.stepCount).toBe(10);
    expect(next.tiers.pro?.run).not.toHaveProperty('durationSeconds');
    expect(next.tiers.pro?.breaker).toEqual(doc.tiers.pro?.breaker);
    expect(effectivePolicy(next, 'acme').run.stepCount).toBe(10);

    // acme's cooldownMs override (5000) would exceed the tier's new cap
    const issues = policyIssues(() => applyTierThresholds(doc, 'pro', { breaker: { cooldownMs: 1000, maxCooldownMs: 2000 } }));
    expect(issues.map((issue) => issue.path)).toEqual(['tenants.acme.overrides.breaker.cooldownMs']);
  });

  it('creates a tier from a patch that extends another, and refuses an incomplete one', () => {
    const next = applyTierThresholds(doc, 'silver', { extends: 'free', run: { stepCount: 250 } });
    expect(next.tiers.silver).toEqual({ ...doc.tiers.free, run: { ...doc.tiers.free!.run, stepCount: 250 } });

    const issues = policyIssues(() => applyTierThresholds(doc, 'bronze', { run: { stepCount: 5 } }));
    expect(issues.map((issue) => issue.path)).toEqual([
      'tiers.bronze.tenant',
      'tiers.bronze.breaker',
      'tiers.bronze.errorRatio',
      'tiers.bronze.warnFraction',
    ]);
  });

  it('refuses a tier patch with a bad value or a bad tier name', () => {
    expect(policyIssues(() => applyTierThresholds(doc, 'pro', { warnFraction: 1 }))[0]?.path).toBe('tiers.pro.warnFraction');
    expect(policyIssues(() => applyTierThresholds(doc, 'no spaces', { extends: 'pro' }))[0]?.path).toBe(
      'tiers["no spaces"]',
    );
  });

  it('sets the default tier and removes tenants', () => {
    expect(applyDefaultTier(doc, 'gold').defaultTier).toBe('gold');
    expect(policyIssues(() => applyDefaultTier(doc, 'nope'))[0]?.path).toBe('defaultTier');
    const removed = removeTenantPolicy(doc, 'acme');
    expect(removed.tenants).not.toHaveProperty('acme');
    expect(effectivePolicy(removed, 'acme').tier).toBe('free');
    expect(removeTenantPolicy(doc, 'nobody')).toBe(doc);
  });

  it('validatePolicyChange returns the document or the error', () => {
    const good = validatePolicyChange(doc, { kind: 'setTenantPolicy', tenantId: 'acme', tier: 'gold' }, doc);
    expect(good.ok && good.document.tenants.acme?.tier).toBe('gold');
    const bad = validatePolicyChange(doc, { kind: 'setTierThresholds', tier: 'pro', patch: { run: { errorRatio: 2 } } }, doc, 'm');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.message).toBe('m tiers.pro.run.errorRatio: must be at most 1 (it is a ratio)');
  });

  it('keeps a changed document valid as a stored document (round trip through JSON)', () => {
    const next = applyTierThresholds(applyTenantPolicy(doc, 'acme', { tier: 'gold' }), 'gold', { run: { costUsd: null } });
    const restored = validatePolicyDocument(JSON.parse(JSON.stringify(next)), 'clickhouse');
    expect(restored).toEqual(next);
    expect(validatePolicyDocument(builtinPolicy(), 'x')).toBe(builtinPolicy());
  });
});
