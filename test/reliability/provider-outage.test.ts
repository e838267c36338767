// The provider-outage scenario (bench/provider-outage.ts) against a real Breakwater: a 5xx storm on
// the primary of a fallback ladder, then the provider heals. Busy tenants must DEGRADE and none
// HALT on the provider's errors (the errorRatio breakers must leave them to the provider breakers);
// after the heal every tenant is back on tier 0 within one breaker wait and one recovery window and
// is never demoted again. The tier changes are read as a subscriber gets them, over graphql-sse.
// On the code before issue 24 the busy tenants' errorRatio HALTed them during the storm.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { MAX_WAIT_MS, MAX_WINDOW_MS, PROVIDER_OUTAGE_POLICY, runProviderOutage } from '../../bench/provider-outage.js';
import { connectSse, type SubscriptionHandle } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';

interface BreakerEventMessage {
  breakerEvents: {
    kind: string;
    tenantId: string;
    runId: string | null;
    scope: string;
    oldState: string;
    newState: string;
    metric: string;
    threshold: number;
    observed: number;
    reason: string;
    actor: string;
    time: string;
    details: { event?: string; cause?: string; from?: { tier: number | null }; to?: { tier: number | null; provider: string; model: string } } | null;
  };
}

const EVERY_FIELD = 'subscription($t: String!) { breakerEvents(tenantId: $t) { kind tenantId runId scope oldState newState metric threshold observed reason actor time details } }';
const TENANTS = 8;

let service: Service;

beforeAll(async () => {
  service = await startWithPolicy(PROVIDER_OUTAGE_POLICY);
});

afterAll(async () => {
  await service?.stop();
});

describe('a provider outage with a fallback ladder', () => {
  it('degrades busy tenants, halts none, and brings every tenant back to tier 0 once, for good', async () => {
    const connection = connectSse(service.graphqlUrl, undefined, { singleConnection: true });
    const tenantIds = Array.from({ length: TENANTS }, (_, i) => `storm-${i}`);
    const streams = new Map<string, SubscriptionHandle<BreakerEventMessage>>(tenantIds.map((t) => [t, connection.subscribe<BreakerEventMessage>(EVERY_FIELD, { t })]));
    try {
      const result = await runProviderOutage(service, { tenants: TENANTS, busyLoops: 12, calmMs: 1_000, stormMs: 4_000, watchMs: 3_000, recoveryCapMs: 15_000 }, 'storm');
      console.log(`provider outage: ${result.halted} of ${result.requests} calls HALTed, ${result.degradedTenants} tenants degraded, peak tenant errorRatio ${result.peakErrorRatio}, back on tier 0 ${result.recoveryMs} ms after the heal`);

      expect(result.halted, 'calls that found their run HALTed').toBe(0);
      expect(result.degradedTenants).toBeGreaterThanOrEqual(TENANTS / 2);
      expect(result.recoveryMs).toBeLessThanOrEqual(MAX_WAIT_MS + MAX_WINDOW_MS + 1_500);
      expect(result.demotedAfterRecovery).toBe(0);

      // Every tier change a subscriber got, with every field; and no tenant or run breaker moved.
      await new Promise((resolve) => setTimeout(resolve, 300)); // the audit append is off the decision path
      for (const tenant of tenantIds) {
        const stream = streams.get(tenant)!;
        expect(stream.errors, tenant).toEqual([]);
        const events = stream.messages.map((m) => m.breakerEvents);
        expect(events.filter((e) => e.kind === 'breaker_transition' && (e.scope === 'TENANT' || e.scope === 'RUN')), tenant).toEqual([]);
        const tiers = events.filter((e) => e.kind === 'degradation' && e.details?.event === 'tier_change');
        for (const e of tiers) {
          expect(e).toMatchObject({ tenantId: tenant, actor: 'breakwater', oldState: expect.stringMatching(/^TIER_\d$/), newState: expect.stringMatching(/^TIER_\d$/) });
          expect(typeof e.reason).toBe('string');
          expect(Number.isNaN(Date.parse(e.time))).toBe(false);
        }
        // after the heal: promotions only, and none after every tenant was back
        const afterHeal = tiers.filter((e) => Date.parse(e.time) >= result.healedAt);
        expect(afterHeal.filter((e) => e.details?.cause !== 'promote'), tenant).toEqual([]);
        expect(afterHeal.filter((e) => Date.parse(e.time) > result.recoveredAt), tenant).toEqual([]);
      }
      const busy = tenantIds.slice(0, TENANTS / 2);
      for (const tenant of busy) {
        const tiers = streams.get(tenant)!.messages.map((m) => m.breakerEvents).filter((e) => e.details?.event === 'tier_change');
        expect(tiers[0], tenant).toMatchObject({ oldState: 'TIER_0', newState: 'TIER_1', details: { cause: 'demote', to: { tier: 1, provider: 'azure.ai.openai', model: 'gpt-4o' } } });
        expect(tiers.at(-1), tenant).toMatchObject({ newState: 'TIER_0', details: { cause: 'promote' } });
      }
    } finally {
      for (const stream of streams.values()) stream.close();
      connection.dispose();
    }
  }, 60_000);
});
