// The compacted change log must replay to exactly what the whole log replays to, over any file the
// operator may reload later: random change sequences (tenant tightenings with nested patches, nulls
// and type changes between platform changes that apply or are skipped) over files that name
// different tiers and tenants.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compactChanges } from '../../src/policy/compact-changes.js';
import type { PolicyChange } from '../../src/policy/effective-policy.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import type { PolicyDocument } from '../../src/policy/policy-types.js';
import { replay, type RecordedChange } from '../../src/policy/runtime-policy.js';
import { yaml } from './policy-test-helpers.js';

const FILES: PolicyDocument[] = [
  parsePolicy('', 'empty.yaml'),
  parsePolicy(
    yaml(`
      defaultTier: free
      tiers:
        gold: { extends: pro, run: { stepCount: 900 } }
      tenants:
        a: { tier: gold, overrides: { run: { toolCallsPerMinute: 50 } } }
        b: { tier: pro }
    `),
    'gold.yaml',
  ),
  parsePolicy(
    yaml(`
      defaultTier: pro
      tenants:
        c: { tier: enterprise }
    `),
    'pro.yaml',
  ),
];

const tenant = fc.constantFrom('a', 'b', 'c');
const tier = fc.constantFrom('free', 'pro', 'enterprise', 'gold');
const metric = fc.constantFrom('stepCount', 'toolCallsPerMinute', 'costUsd');
const limit = fc.integer({ min: 1, max: 500 });

// Tightening patches as a tenant admin could send them, plus the odd shapes JSON merge patch allows.
const leaf = fc.oneof(limit, fc.constant(null), fc.constant('x'));
const section = fc.oneof(fc.dictionary(metric, leaf, { maxKeys: 3 }), fc.constant(null), limit);
const tighteningPatch = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  {
    weight: 6,
    arbitrary: fc.record(
      { run: section, tenant: section, warnFraction: fc.oneof(fc.double({ min: 0.1, max: 0.9, noNaN: true }), fc.constant(null)), degradation: fc.oneof(fc.record({ quota: fc.dictionary(fc.constantFrom('requestsPerMinute', 'tokensPerMinute'), leaf, { maxKeys: 2 }) }), fc.constant(null)) },
      { requiredKeys: [] },
    ),
  },
);

const change: fc.Arbitrary<PolicyChange> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('tightenTenantPolicy' as const), tenantId: tenant, patch: tighteningPatch }) as fc.Arbitrary<PolicyChange> },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('revertTenantPolicy' as const), tenantId: tenant }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setTenantPolicy' as const), tenantId: tenant, tier, patch: fc.record({ run: fc.dictionary(metric, limit, { maxKeys: 2 }) }) }) as fc.Arbitrary<PolicyChange> },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeTenantPolicy' as const), tenantId: tenant }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setTierThresholds' as const), tier, patch: fc.record({ run: fc.dictionary(metric, limit, { maxKeys: 2 }) }) }) as fc.Arbitrary<PolicyChange> },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setDefaultTier' as const), tier }) },
);

const recorded = (changes: readonly PolicyChange[]): RecordedChange[] => changes.map((change, i) => ({ seq: i + 1, actor: `actor-${i}`, at: 1_000 + i, change }));

function outcome(file: PolicyDocument, changes: readonly RecordedChange[]) {
  const { platform, layers } = replay(file, changes);
  return { platform, layers: Object.fromEntries([...layers].sort(([x], [y]) => x.localeCompare(y))) };
}

describe('compacting the run-time change log', () => {
  it('replays to the same platform policy and tenant layers over every file', () => {
    fc.assert(
      fc.property(fc.array(change, { maxLength: 60 }), (changes) => {
        const log = recorded(changes);
        const compacted = compactChanges(log);
        for (const file of FILES) expect(outcome(file, compacted)).toEqual(outcome(file, log));
      }),
      { numRuns: 400 },
    );
  });

  it("folds a tenant's stream of tightenings into one record, keeping the latest actor", () => {
    const changes: PolicyChange[] = Array.from({ length: 4_500 }, (_, i) => ({ kind: 'tightenTenantPolicy', tenantId: 'a', patch: { run: { stepCount: 1_000 - (i % 900) } } }));
    const compacted = compactChanges(recorded(changes));
    expect(compacted).toEqual([{ seq: 4_500, actor: 'actor-4499', at: 5_499, change: { kind: 'tightenTenantPolicy', tenantId: 'a', patch: { run: { stepCount: 1_000 - (4_499 % 900) } } } }]);
  });

  it('keeps platform changes, and only the tightenings since the tenant was last reverted', () => {
    const changes: PolicyChange[] = [
      { kind: 'tightenTenantPolicy', tenantId: 'a', patch: { run: { stepCount: 10 } } },
      { kind: 'setDefaultTier', tier: 'pro' },
      { kind: 'tightenTenantPolicy', tenantId: 'a', patch: { run: { costUsd: 1 } } },
      { kind: 'revertTenantPolicy', tenantId: 'a' },
      { kind: 'tightenTenantPolicy', tenantId: 'a', patch: { run: { stepCount: 5 } } },
      { kind: 'tightenTenantPolicy', tenantId: 'a', patch: { run: { stepCount: 4 } } },
    ];
    expect(compactChanges(recorded(changes)).map((r) => [r.seq, r.change])).toEqual([
      [2, { kind: 'setDefaultTier', tier: 'pro' }],
      [4, { kind: 'revertTenantPolicy', tenantId: 'a' }],
      [6, { kind: 'tightenTenantPolicy', tenantId: 'a', patch: { run: { stepCount: 4 } } }],
    ]);
  });
});
