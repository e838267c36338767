import { describe, expect, it } from 'vitest';
import { providerHealthSchema } from '../../src/degradation/degradation-schema.js';
import { HealthBreaker } from '../../src/degradation/health-breaker.js';
import { ProviderHealth } from '../../src/degradation/provider-health.js';
import { Clock } from './helpers.js';

const settings = providerHealthSchema.parse({
  slidingWindowSize: 10,
  slidingWindowMs: 60_000,
  minimumCalls: 5,
  failureRateThreshold: 0.5,
  slowCallRateThreshold: 0.8,
  slowCallDurationMs: 10_000,
  waitDurationOpenMs: 30_000,
  waitMultiplier: 2,
  maxWaitDurationMs: 100_000,
  permittedCallsHalfOpen: 3,
  sharedMinTenants: 2,
});

const own = { scope: 'PROVIDER' as const, provider: 'openai', model: '', tenantId: 't1' };
const ok = { failure: false, slow: false, tenantId: 't1' };
const bad = { failure: true, slow: false, tenantId: 't1' };

describe('HealthBreaker (Resilience4j semantics)', () => {
  it('does not judge before the minimum number of calls', () => {
    const clock = new Clock();
    const breaker = new HealthBreaker(own, clock.now, settings);
    for (let i = 0; i < 4; i++) expect(breaker.record(bad, settings)).toEqual([]);
    expect(breaker.state()).toBe('CLOSED');
    const [open] = breaker.record(bad, settings);
    expect(open).toMatchObject({ from: 'CLOSED', to: 'OPEN', cause: 'failure_rate', waitMs: 30_000 });
    expect(open?.rates).toMatchObject({ calls: 5, failures: 5, failureRate: 1 });
  });

  it('opens at the failure-rate threshold (>=), over the last N calls only', () => {
    const clock = new Clock();
    const breaker = new HealthBreaker(own, clock.now, settings);
    // 10 good calls, then failures push the good ones out of the 10-call window
    for (let i = 0; i < 10; i++) breaker.record(ok, settings);
    for (let i = 0; i < 4; i++) expect(breaker.record(bad, settings)).toEqual([]);
    expect(breaker.rates(settings).failureRate).toBeCloseTo(0.4);
    expect(breaker.record(bad, settings)[0]).toMatchObject({ to: 'OPEN' });
  });

  it('forgets calls older than the time window', () => {
    const clock = new Clock();
    const breaker = new HealthBreaker(own, clock.now, settings);
    for (let i = 0; i < 4; i++) breaker.record(bad, settings);
    clock.advance(60_000);
    expect(breaker.record(bad, settings)).toEqual([]);
    expect(breaker.rates(settings).calls).toBe(1);
  });

  it('opens on the slow-call rate', () => {
    const clock = new Clock();
    const breaker = new HealthBreaker(own, clock.now, settings);
    const slow = { failure: false, slow: true, tenantId: 't1' };
    for (let i = 0; i < 4; i++) breaker.record(slow, settings);
    expect(breaker.record(slow, settings)[0]).toMatchObject({ to: 'OPEN', cause: 'slow_call_rate' });
  });

  it('goes HALF_OPEN after the wait, closes when the probe calls pass', () => {
    const clock = new Clock();
    const breaker = new HealthBreaker(own, clock.now, settings);
    for (let i = 0; i < 5; i++) breaker.record(bad, settings);
    expect(breaker.openUntil()).toBe(clock.ms + 30_000);
    clock.advance(10_000);
    // calls in flight when it opened are ignored
    expect(breaker.record(bad, settings)).toEqual([]);
    clock.advance(19_999);
    expect(breaker.state()).toBe('OPEN');
    clock.advance(1);
    expect(breaker.state()).toBe('HALF_OPEN');
    const [half] = breaker.tick(settings);
    expect(half).toMatchObject({ from: 'OPEN', to: 'HALF_OPEN', cause: 'wait_elapsed' });
    expect(breaker.leftOpenAt()).toBe(clock.ms);
    expect(breaker.record(ok, settings)).toEqual([]);
    expect(breaker.record(bad, settings)).toEqual([]);
    // 1 failure in 3 probes is under 50 %
    expect(breaker.record(ok, settings)[0]).toMatchObject({ from: 'HALF_OPEN', to: 'CLOSED', cause: 'probes_passed' });
  });

  it('a call that started before probing began is no probe, and none counts once it closed', () => {
    const clock = new Clock();
    const breaker = new HealthBreaker(own, clock.now, settings);
    for (let i = 0; i < 5; i++) breaker.record(bad, settings);
    const stormAt = clock.ms;
    clock.advance(30_000);
    breaker.tick(settings);
    // the storm's stragglers, exported after the wait elapsed
    const straggler = { ...bad, startedAt: stormAt + 1_000 };
    for (let i = 0; i < 3; i++) expect(breaker.record(straggler, settings)).toEqual([]);
    expect(breaker.state()).toBe('HALF_OPEN');
    for (let i = 0; i < 2; i++) breaker.record({ ...ok, startedAt: clock.ms }, settings);
    expect(breaker.record({ ...ok, startedAt: clock.ms }, settings)[0]).toMatchObject({ to: 'CLOSED', cause: 'probes_passed' });
    for (let i = 0; i < 5; i++) expect(breaker.record(straggler, settings)).toEqual([]);
    expect(breaker.state()).toBe('CLOSED');
    expect(breaker.rates(settings).failures).toBe(0);
  });

  it('a probe-era call still in flight when the probes close the breaker does not re-open it', () => {
    const clock = new Clock();
    const breaker = new HealthBreaker(own, clock.now, settings);
    for (let i = 0; i < 5; i++) breaker.record(bad, settings);
    clock.advance(30_000);
    breaker.tick(settings);
    // sent while probing, before the provider healed; answered only after the probes passed
    const inFlight = { ...bad, startedAt: clock.ms + 10 };
    clock.advance(100);
    for (let i = 0; i < 3; i++) breaker.record({ ...ok, startedAt: clock.ms }, settings);
    expect(breaker.state()).toBe('CLOSED');
    clock.advance(200);
    for (let i = 0; i < 5; i++) expect(breaker.record(inFlight, settings)).toEqual([]);
    expect(breaker.state()).toBe('CLOSED');
    // calls sent after the close are judged as usual
    for (let i = 0; i < 5; i++) breaker.record({ ...bad, startedAt: clock.ms }, settings);
    expect(breaker.state()).toBe('OPEN');
  });

  it('a tenant breaker that recovered is kept for the window, so stragglers find its clean slate', () => {
    const clock = new Clock();
    const health = new ProviderHealth(clock.now, () => settings);
    for (let i = 0; i < 5; i++) health.record('t1', 'openai', '', true, false);
    clock.advance(30_000);
    health.tick();
    const inFlight = clock.ms + 10;
    clock.advance(100);
    for (let i = 0; i < 3; i++) health.record('t1', 'openai', '', false, false, [], clock.ms, clock.ms);
    health.tick();
    expect(health.views('t1').filter((v) => v.key.tenantId === 't1').map((v) => v.state)).toEqual(['CLOSED']);
    for (let i = 0; i < 5; i++) health.record('t1', 'openai', '', true, false, [], clock.ms, inFlight);
    expect(health.blocking('t1', 'openai', '')).toEqual([]);
    clock.advance(settings.slidingWindowMs);
    health.tick();
    expect(health.views('t1').filter((v) => v.key.tenantId === 't1')).toEqual([]);
  });

  it('forget() drops the failures before a recovery, so fresh calls are judged alone', () => {
    const clock = new Clock();
    const breaker = new HealthBreaker(own, clock.now, settings);
    for (let i = 0; i < 4; i++) breaker.record(bad, settings);
    clock.advance(1_000);
    breaker.forget(clock.ms, settings);
    for (let i = 0; i < 5; i++) expect(breaker.record({ ...ok, startedAt: clock.ms }, settings)).toEqual([]);
    expect(breaker.rates(settings)).toMatchObject({ calls: 5, failures: 0 });
  });

  it('re-opens from HALF_OPEN with a growing, capped wait', () => {
    const clock = new Clock();
    const breaker = new HealthBreaker(own, clock.now, settings);
    for (let i = 0; i < 5; i++) breaker.record(bad, settings);
    const waits: number[] = [];
    for (let round = 0; round < 3; round++) {
      clock.advance(breaker.openUntil()! - clock.ms);
      breaker.record(bad, settings);
      breaker.record(bad, settings);
      const [reopen] = breaker.record(ok, settings);
      expect(reopen).toMatchObject({ from: 'HALF_OPEN', to: 'OPEN', cause: 'probes_failed' });
      waits.push(reopen!.waitMs);
    }
    expect(waits).toEqual([60_000, 100_000, 100_000]);
  });

  it('a shared breaker needs several tenants over the thresholds on their own calls', () => {
    const clock = new Clock();
    const shared = new HealthBreaker({ ...own, tenantId: '' }, clock.now, settings);
    for (let i = 0; i < 10; i++) expect(shared.record(bad, settings)).toEqual([]);
    expect(shared.rates(settings)).toMatchObject({ failureRate: 1, failingTenants: 1 });
    // one stray failure from another tenant: under its share of the minimum calls (5 / 2 tenants)
    const t2bad = { failure: true, slow: false, tenantId: 't2' };
    expect(shared.record(t2bad, settings)).toEqual([]);
    expect(shared.state()).toBe('CLOSED');
    // a second tenant failing on its own calls too opens it, and says so in tenants, not calls
    const [open] = shared.record(t2bad, settings);
    expect(open).toMatchObject({ to: 'OPEN', rates: { failingTenants: 2 } });
    expect(open?.reason).toMatch(/^openai: 2 tenants over the failure rate threshold \(50 %\) on their own calls; open for 30000 ms$/);
    expect(shared.view(settings).trippedBy).toBe(2);
  });

  it("a tenant's failures under the threshold among its own good calls do not count it", () => {
    const clock = new Clock();
    const shared = new HealthBreaker({ ...own, tenantId: '' }, clock.now, settings);
    for (let i = 0; i < 6; i++) shared.record(bad, settings);
    for (let i = 0; i < 3; i++) shared.record({ failure: false, slow: false, tenantId: 't2' }, settings);
    // t2: 1 failure in 4 calls, 25 %: the window is 70 % failed, but only t1 is over
    expect(shared.record({ failure: true, slow: false, tenantId: 't2' }, settings)).toEqual([]);
    expect(shared.rates(settings)).toMatchObject({ failingTenants: 1, failureRate: 0.7 });
  });
});

describe('ProviderHealth', () => {
  it("a shared breaker's passed probes clear the incident from every tenant's own breakers", () => {
    const clock = new Clock();
    const health = new ProviderHealth(clock.now, () => settings);
    // a quiet tenant's failures stay under its own minimum; two busy tenants open the shared breaker
    for (let i = 0; i < 3; i++) health.record('quiet', 'openai', 'gpt-4o', true, false);
    for (const t of ['a', 'b']) for (let i = 0; i < 5; i++) health.record(t, 'openai', 'gpt-4o', true, false);
    expect(health.views().filter((v) => v.state === 'OPEN')).toHaveLength(2);
    clock.advance(30_000);
    health.tick();
    for (const t of ['a', 'b', 'a']) health.record(t, 'openai', 'gpt-4o', false, false, [], clock.ms, clock.ms);
    expect(health.views().every((v) => v.state === 'CLOSED')).toBe(true);
    // back on the healed provider: its good calls are judged alone
    const moves = [];
    for (let i = 0; i < 5; i++) moves.push(...health.record('quiet', 'openai', 'gpt-4o', false, false, [], clock.ms, clock.ms));
    expect(moves).toEqual([]);
    expect(health.blocking('quiet', 'openai', 'gpt-4o')).toEqual([]);
  });

  it("one tenant's failures open its own breakers, not everyone's", () => {
    const clock = new Clock();
    const health = new ProviderHealth(clock.now, () => settings);
    const transitions = [];
    for (let i = 0; i < 5; i++) transitions.push(...health.record('t1', 'openai', 'gpt-4o', true, false));
    expect(transitions.map((t) => `${t.key.scope}:${t.key.tenantId}`).sort()).toEqual(['MODEL:t1', 'PROVIDER:t1']);
    expect(health.blocking('t1', 'openai', 'gpt-4o')).toHaveLength(2);
    expect(health.blocking('t2', 'openai', 'gpt-4o')).toEqual([]);
    // a second tenant failing too opens the shared ones, which block every tenant
    for (let i = 0; i < 5; i++) health.record('t2', 'openai', 'gpt-4o', true, false);
    expect(health.blocking('t3', 'openai', 'gpt-4o').map((v) => v.key.scope).sort()).toEqual(['MODEL', 'PROVIDER']);
    expect(health.blocking('t3', 'openai', 'gpt-4o-mini').map((v) => v.key.scope)).toEqual(['PROVIDER']);
    expect(health.blocking('t3', 'anthropic', 'claude')).toEqual([]);
  });

  it('creates no breaker of its own for a tenant whose calls are all good, and drops quiet ones', () => {
    const clock = new Clock();
    const health = new ProviderHealth(clock.now, () => settings);
    for (let i = 0; i < 20; i++) health.record('t1', 'openai', 'gpt-4o', false, false);
    expect(health.views('t1').filter((v) => v.key.tenantId === 't1')).toEqual([]);
    health.record('t1', 'openai', 'gpt-4o', true, false);
    expect(health.views('t1').filter((v) => v.key.tenantId === 't1')).toHaveLength(2);
    clock.advance(60_001);
    health.tick();
    expect(health.views('t1').filter((v) => v.key.tenantId === 't1')).toEqual([]);
  });

  it('a call without a model feeds and reports the provider breakers once', () => {
    const clock = new Clock();
    const health = new ProviderHealth(clock.now, () => settings);
    const transitions = [];
    for (let i = 0; i < 5; i++) transitions.push(...health.record('t1', 'openai', '', true, false));
    expect(transitions.map((t) => `${t.key.scope}:${t.key.tenantId}`)).toEqual(['PROVIDER:t1']);
    expect(health.blocking('t1', 'openai', '').map((v) => `${v.key.scope}:${v.key.tenantId}`)).toEqual(['PROVIDER:t1']);
    expect(health.views().map((v) => `${v.key.scope}:${v.key.provider}/${v.key.model}`)).toEqual(['PROVIDER:openai/']);
  });

  it('evicts idle closed shared breakers, keeps busy ones', () => {
    const clock = new Clock();
    const health = new ProviderHealth(clock.now, () => settings);
    health.record('t1', 'openai', 'gpt-4o', false, false);
    clock.advance(10_000);
    health.record('t1', 'anthropic', 'claude', false, false);
    health.evictIdle(5_000);
    expect(health.views().map((v) => `${v.key.provider}/${v.key.model}`).sort()).toEqual(['anthropic/', 'anthropic/claude']);
    // a new breaker after the eviction starts afresh
    health.record('t1', 'openai', 'gpt-4o', false, false);
    expect(health.views()).toHaveLength(4);
  });

  it('keeps at most 2,048 shared breakers, dropping the idlest', () => {
    const clock = new Clock();
    const health = new ProviderHealth(clock.now, () => settings);
    for (let i = 0; i < 2_100; i++) {
      clock.advance(1);
      health.record('t1', 'openai', `model-${i}`, false, false);
    }
    const names = health.views().map((v) => `${v.key.provider}/${v.key.model}`);
    expect(names).toHaveLength(2_048);
    expect(names).toContain('openai/');
    expect(names).toContain('openai/model-2099');
    expect(names).not.toContain('openai/model-0');
  });
});
