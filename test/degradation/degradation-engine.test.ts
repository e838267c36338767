// The degradation path end to end at the unit level: AgentSpan batches in, decisions on a real
// DecisionBus, audit events in a real (embedded) ClickHouse audit log.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { openAuditLog } from '../helpers/audit.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import { DegradationEngine, type DegradationEngineOptions } from '../../src/degradation/degradation-engine.js';
import type { DegradationSection } from '../../src/degradation/degradation-schema.js';
import type { QuotaLevelChange } from '../../src/degradation/quota-telemetry.js';
import type { AgentSpan } from '../../src/contracts/agent-span.js';
import type { Store } from '../../src/storage/clickhouse.js';
import { Clock, failed, limited, openTestStore, section, span, type SpanInit } from './helpers.js';

const LADDER = [
  { tier: 0, provider: 'openai', model: 'gpt-4o' },
  { tier: 1, provider: 'azure.ai.openai', model: 'gpt-4o' },
  { tier: 2, provider: 'vllm', model: 'llama-3.1-70b' },
  { tier: 3, provider: 'openai', model: 'gpt-4o-mini' },
];

function policy(tenants: Record<string, unknown> = {}, defaults: Record<string, unknown> = {}): DegradationSection {
  return section({
    providerHealth: { minimumCalls: 5, slidingWindowSize: 20, waitDurationOpenMs: 30_000, permittedCallsHalfOpen: 3, sharedMinTenants: 2 },
    defaults: { tiers: LADDER, recovery: { windowMs: 60_000, probeCalls: 3 }, ...defaults },
    tenants,
  });
}

let store: Store;
let closeStore: () => Promise<void>;
/** one audit log for the file, as one process has; tests use tenants of their own */
let sharedAudit: AuditLog;

beforeAll(async () => {
  ({ store, close: closeStore } = await openTestStore('bw-degrade-'));
  sharedAudit = await openAuditLog(store.client);
});

afterAll(async () => {
  await closeStore?.();
});

function setup(sectionValue: DegradationSection, extra: Partial<DegradationEngineOptions> = {}) {
  const clock = new Clock();
  const bus = new DecisionBus({ now: clock.now });
  const audit = sharedAudit;
  let current = sectionValue;
  let ids = 0;
  const engine = new DegradationEngine({
    bus,
    audit,
    policy: () => current,
    now: clock.now,
    newId: () => `req-${++ids}`,
    ...extra,
  });
  const send = (...spans: AgentSpan[]) => engine.observe(spans, 0);
  /** spans end at the clock's now unless told otherwise */
  const at = (init: SpanInit = {}): SpanInit => ({ endMs: clock.ms, ...init });
  const events = async (tenantId: string, kinds: ('degradation' | 'breaker_transition')[] = ['degradation']) => {
    await engine.flush();
    return audit.list(tenantId, { kinds, order: 'asc' });
  };
  return { clock, bus, audit, engine, send, at, events, setPolicy: (s: DegradationSection) => (current = s) };
}

function times<T>(n: number, make: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => make(i));
}

describe('a 5xx storm', () => {
  it('opens the provider breaker and degrades only tenants whose policy allows it', async () => {
    const t = setup(policy({ 'storm-strict': { permittedTiers: [0, 4] }, 'storm-nohalt': { permittedTiers: [0] }, 'storm-other': { tiers: [{ tier: 0, provider: 'anthropic', model: 'claude-sonnet-4-5' }, LADDER[2]] } }));
    // everyone is known and healthy first
    t.send(...['storm-flex', 'storm-strict', 'storm-nohalt'].map((tenantId) => span(t.at({ tenantId }))));
    t.send(span(t.at({ tenantId: 'storm-other', provider: 'anthropic', requestModel: 'claude-sonnet-4-5' })));
    expect(t.bus.storedDecisions()).toBe(0);

    t.clock.advance(1_000);
    t.send(...times(6, () => failed(t.at({ tenantId: 'storm-flex', runId: 'flex-run' }))), ...times(6, () => failed(t.at({ tenantId: 'storm-strict', runId: 'strict-run', errorType: 'timeout', httpStatusCode: 0 }))));

    const flex = t.bus.latest('storm-flex');
    expect(flex).toMatchObject({ action: 'DEGRADE', fallbackModel: 'gpt-4o', tier: 1, degraded: true, state: 'OPEN' });
    expect(['PROVIDER', 'MODEL']).toContain(flex.scope);
    expect(flex.reason).toMatch(/use gpt-4o via azure\.ai\.openai \(tier 1\)/);
    // a run of the tenant sees the tenant-wide decision
    expect(t.bus.latest('storm-flex', 'flex-run')).toMatchObject({ action: 'DEGRADE', tier: 1 });

    // forbids any downgrade, permits suspension: suspended, never switched
    expect(t.bus.latest('storm-strict')).toMatchObject({ action: 'HALT', tier: 4, degraded: true });
    expect(t.bus.latest('storm-strict').fallbackModel).toBeUndefined();
    expect(t.bus.latest('storm-strict').retryAfterMs).toBeGreaterThan(0);
    // permits nothing but the primary: halted (it sent no failure itself; the shared breaker is open)
    const nohalt = t.bus.latest('storm-nohalt');
    expect(nohalt).toMatchObject({ action: 'HALT', degraded: false });
    expect(nohalt.tier).toBeUndefined();
    expect(nohalt.fallbackModel).toBeUndefined();
    // another provider's tenant is untouched
    expect(t.bus.latest('storm-other').action).toBe('ALLOW');

    const views = t.engine.providerBreakers();
    expect(views.find((v) => v.key.scope === 'PROVIDER' && v.key.provider === 'openai')?.state).toBe('OPEN');

    const [change] = await t.events('storm-flex');
    expect(change).toMatchObject({ kind: 'degradation', oldState: 'TIER_0', newState: 'TIER_1', actor: 'breakwater', runId: '' });
    const details = JSON.parse(change!.details) as Record<string, unknown>;
    expect(details).toMatchObject({
      event: 'tier_change',
      cause: 'demote',
      from: { tier: 0, provider: 'openai', model: 'gpt-4o' },
      to: { tier: 1, provider: 'azure.ai.openai', model: 'gpt-4o' },
      degraded: true,
      decision: { action: 'DEGRADE', tier: 1 },
      activeRuns: 2,
    });
    expect((details.runs as { runId: string }[]).map((r) => r.runId).sort()).toEqual(['flex-run', 'r1']);
    expect((details.trigger as { kind: string }).kind).toMatch(/breaker/);
    const [suspended] = await t.events('storm-strict');
    expect(suspended).toMatchObject({ oldState: 'TIER_0', newState: 'SUSPENDED' });
    expect((await t.events('storm-nohalt'))[0]).toMatchObject({ newState: 'HALTED' });
    expect(await t.events('storm-other')).toEqual([]);
    // the provider breaker transitions are in the logs of the tenants that use the provider
    const transitions = await t.events('storm-flex', ['breaker_transition']);
    expect(transitions.map((e) => `${e.scope}:${e.oldState}->${e.newState}`)).toContain('PROVIDER:CLOSED->OPEN');
    expect(await t.events('storm-other', ['breaker_transition'])).toEqual([]);
    expect((await t.audit.verify('storm-flex')).ok).toBe(true);
  });

  it("one tenant's storm degrades that tenant alone", async () => {
    const t = setup(policy());
    t.send(span(t.at({ tenantId: 'solo-bystander' })));
    t.send(...times(8, () => failed(t.at({ tenantId: 'solo-noisy' }))));
    expect(t.bus.latest('solo-noisy')).toMatchObject({ action: 'DEGRADE', tier: 1 });
    expect(t.bus.latest('solo-bystander').action).toBe('ALLOW');
    expect(t.engine.providerBreakers().every((v) => v.state === 'CLOSED')).toBe(true);
  });

  it("one tenant's storm and one stray failure elsewhere leave the shared breaker closed", () => {
    const t = setup(policy());
    t.send(span(t.at({ tenantId: 'stray-bystander' })));
    t.send(...times(8, () => failed(t.at({ tenantId: 'stray-noisy' }))));
    t.send(failed(t.at({ tenantId: 'stray-unlucky' })));
    expect(t.bus.latest('stray-noisy')).toMatchObject({ action: 'DEGRADE', tier: 1 });
    expect(t.bus.latest('stray-unlucky').action).toBe('ALLOW');
    expect(t.bus.latest('stray-bystander').action).toBe('ALLOW');
    expect(t.engine.providerBreakers().every((v) => v.state === 'CLOSED')).toBe(true);
  });
});

// The engine publishes only when what an agent acts on changes (its decision signature): these
// fail if a field that matters is left out of it.
describe('publishing', () => {
  it('publishes a throttle again when the provider asks for a longer wait', () => {
    const t = setup(policy());
    t.send(limited(t.at({ tenantId: 'longer', retryAfterMs: 5_000 })));
    const first = t.bus.latest('longer');
    expect(first).toMatchObject({ action: 'THROTTLE', retryAfterMs: 5_000 });
    t.clock.advance(1_000);
    t.send(limited(t.at({ tenantId: 'longer', retryAfterMs: 30_000 })));
    const second = t.bus.latest('longer');
    expect(second).toMatchObject({ action: 'THROTTLE', retryAfterMs: 30_000 });
    expect(second.sequence).toBeGreaterThan(first.sequence);
  });

  it('publishes a move between two tiers that serve the same model', () => {
    const sameModel = [LADDER[0]!, LADDER[1]!, { tier: 2, provider: 'vllm', model: 'gpt-4o' }, LADDER[3]!];
    const t = setup(policy({}, { tiers: sameModel }));
    t.send(span(t.at({ tenantId: 'twin' })));
    t.send(...times(6, () => failed(t.at({ tenantId: 'twin' }))));
    const onAzure = t.bus.latest('twin');
    expect(onAzure).toMatchObject({ action: 'DEGRADE', tier: 1, fallbackModel: 'gpt-4o' });
    t.clock.advance(1_000);
    t.send(...times(6, () => failed(t.at({ tenantId: 'twin', provider: 'azure.ai.openai' }))));
    const onVllm = t.bus.latest('twin');
    expect(onVllm).toMatchObject({ action: 'DEGRADE', tier: 2, fallbackModel: 'gpt-4o' });
    expect(onVllm.sequence).toBeGreaterThan(onAzure.sequence);
  });
});

describe('a 429 burst', () => {
  it('throttles with the retry-after the provider gave and opens nothing', async () => {
    const t = setup(policy());
    t.send(span(t.at({ tenantId: 'burst' })));
    t.clock.advance(500);
    // the provider answered 429 with retry-after 20 s, 300 ms ago
    t.send(...times(40, () => limited(t.at({ tenantId: 'burst', endMs: t.clock.ms - 300, retryAfterMs: 20_000, attrs: { 'error.message': 'Rate limit reached on requests per min (RPM)' } }))));
    const throttled = t.bus.latest('burst');
    expect(throttled).toMatchObject({ action: 'THROTTLE', state: 'CLOSED', scope: 'PROVIDER', metric: 'rateLimit.request_rate', retryAfterMs: 19_700 });
    expect(throttled.tier).toBeUndefined();
    expect(throttled.degraded).toBeUndefined();
    expect(t.engine.providerBreakers('*').every((v) => v.state === 'CLOSED')).toBe(true);
    expect(t.engine.status('burst').throttles).toMatchObject([{ key: 'openai', kind: 'request_rate', capacityExhausted: false }]);
    expect(await t.events('burst', ['degradation', 'breaker_transition'])).toEqual([]);

    t.clock.advance(19_699);
    t.engine.tick();
    expect(t.bus.latest('burst').action).toBe('THROTTLE');
    t.clock.advance(1);
    t.engine.tick();
    expect(t.bus.latest('burst')).toMatchObject({ action: 'ALLOW', retryAfterMs: 0 });
  });

  it('a call that succeeds after the 429 lifts the throttle at once', () => {
    const t = setup(policy());
    t.send(limited(t.at({ tenantId: 'lift', retryAfterMs: 30_000 })));
    expect(t.bus.latest('lift').action).toBe('THROTTLE');
    t.clock.advance(2_000);
    t.send(span(t.at({ tenantId: 'lift', durationMs: 500 })));
    expect(t.bus.latest('lift').action).toBe('ALLOW');
  });

  it('without a retry-after, waits for one request at the rate the key reports', () => {
    const t = setup(policy());
    t.send(limited(t.at({ tenantId: 'no-retry', rateLimitLimitRequests: 500, rateLimitRemainingRequests: 0 })));
    // 500 requests per minute: one every 120 ms
    expect(t.bus.latest('no-retry')).toMatchObject({ action: 'THROTTLE', retryAfterMs: 120 });
  });

  it('routes to headroom when the quota resets too far away, still opening nothing', async () => {
    const t = setup(policy({}, { triggers: { maxThrottleWaitMs: 60_000 } }));
    t.send(...times(3, () => limited(t.at({ tenantId: 'daily', errorType: 'rate_limit_exceeded', attrs: { 'error.message': 'Rate limit reached on requests per day (RPD)' }, retryAfterMs: 3 * 3_600_000 }))));
    // the openai key is out for hours: both openai tiers are blocked, azure is next
    expect(t.bus.latest('daily')).toMatchObject({ action: 'DEGRADE', tier: 1, fallbackModel: 'gpt-4o', scope: 'PROVIDER', metric: 'quota.daily' });
    expect(t.engine.providerBreakers('*').every((v) => v.state === 'CLOSED')).toBe(true);
    const [change] = await t.events('daily');
    expect(JSON.parse(change!.details)).toMatchObject({ trigger: { kind: 'capacity' } });
  });
});

describe('recovery', () => {
  // every test has its own tenants: the audit log is shared by the file
  async function degraded(tenantId: string) {
    const t = setup(policy());
    t.send(span(t.at({ tenantId })), span(t.at({ tenantId: `${tenantId}-peer` })));
    t.send(...times(6, () => failed(t.at({ tenantId }))), ...times(6, () => failed(t.at({ tenantId: `${tenantId}-peer` }))));
    expect(t.bus.latest(tenantId)).toMatchObject({ action: 'DEGRADE', tier: 1 });
    return t;
  }

  it('promotes back after the recovery window and probes, without flapping', async () => {
    const t = await degraded('rec');
    const openedAt = t.clock.ms;
    const sequences = new Set<number>();
    // degraded traffic on tier 1 meanwhile; time passes in ticks
    for (let s = 1; s <= 89; s++) {
      t.clock.advance(1_000);
      if (s % 10 === 0) t.send(span(t.at({ tenantId: 'rec', provider: 'azure.ai.openai' })));
      t.engine.tick();
      sequences.add(t.bus.latest('rec').sequence);
    }
    // the breaker went half-open at +30 s; the window runs 60 s from then: nothing changed yet
    expect(sequences.size).toBe(1);
    expect(t.bus.latest('rec')).toMatchObject({ action: 'DEGRADE', tier: 1 });
    t.clock.advance(openedAt + 90_000 - t.clock.ms);
    t.engine.tick();
    expect(t.bus.latest('rec')).toMatchObject({ action: 'ALLOW', tier: 0, fallbackModel: 'gpt-4o', degraded: false, state: 'HALF_OPEN' });
    expect(t.engine.status('rec').tracks[0]).toMatchObject({ state: 'PROBING', probesLeft: 3 });

    // three good calls on the primary confirm the promotion
    for (let i = 0; i < 3; i++) {
      t.clock.advance(200);
      t.send(span(t.at({ tenantId: 'rec' })));
    }
    expect(t.bus.latest('rec')).toMatchObject({ action: 'ALLOW', tier: 0, degraded: false, state: 'CLOSED' });
    expect(t.engine.status('rec').tracks[0]).toMatchObject({ state: 'PRIMARY', recoveryWindowMs: 60_000 });
    const before = t.bus.latest('rec').sequence;
    for (let s = 0; s < 120; s++) {
      t.clock.advance(1_000);
      if (s % 5 === 0) t.send(span(t.at({ tenantId: 'rec' })));
      t.engine.tick();
    }
    expect(t.bus.latest('rec').sequence).toBe(before);

    const log = await t.events('rec');
    expect(log.map((e) => `${e.oldState}->${e.newState}`)).toEqual(['TIER_0->TIER_1', 'TIER_1->TIER_0', 'TIER_0->TIER_0']);
    expect(JSON.parse(log[1]!.details)).toMatchObject({ event: 'tier_change', cause: 'promote', probing: true, degraded: false });
    expect(JSON.parse(log[2]!.details)).toMatchObject({ event: 'probes_passed' });
  });

  it("after the provider heals, no tenant's own breaker re-opens on the storm's failures", async () => {
    const t = setup(
      section({
        // a window long enough to still hold the storm when the tenants come back
        providerHealth: { minimumCalls: 5, slidingWindowSize: 20, slidingWindowMs: 600_000, waitDurationOpenMs: 30_000, permittedCallsHalfOpen: 3, sharedMinTenants: 2 },
        defaults: { tiers: LADDER, recovery: { windowMs: 60_000, probeCalls: 3 } },
        tenants: { 'heal-careful': { consent: { required: true, fromTier: 1 } } },
      }),
    );
    const tenants = ['heal-quiet', 'heal-a', 'heal-b'];
    // a tenant that must consent, with storm failures of its own under its breaker's minimum too
    t.send(span(t.at({ tenantId: 'heal-careful' })), ...times(3, () => failed(t.at({ tenantId: 'heal-careful' }))));
    // the quiet tenant's failures stay under its own breaker's minimum; the busy ones open the shared breaker
    t.send(span(t.at({ tenantId: 'heal-quiet' })), ...times(3, () => failed(t.at({ tenantId: 'heal-quiet' }))));
    for (const tenantId of ['heal-a', 'heal-b']) t.send(span(t.at({ tenantId })), ...times(6, () => failed(t.at({ tenantId }))));
    for (const tenantId of tenants) expect(t.bus.latest(tenantId)).toMatchObject({ action: 'DEGRADE', tier: 1 });
    const [request] = t.engine.pendingConsents('heal-careful');
    await t.engine.approve('heal-careful', request!.id, 'nurse');
    tenants.push('heal-careful');
    for (let s = 0; s < 90; s++) {
      t.clock.advance(1_000);
      t.engine.tick();
    }
    for (const tenantId of tenants) expect(t.bus.latest(tenantId)).toMatchObject({ action: 'ALLOW', tier: 0, state: 'HALF_OPEN' });
    // the healed primary answers every call
    for (let round = 0; round < 10; round++) {
      t.clock.advance(200);
      for (const tenantId of tenants) t.send(span(t.at({ tenantId })));
    }
    for (const tenantId of tenants) expect(t.bus.latest(tenantId)).toMatchObject({ action: 'ALLOW', tier: 0, state: 'CLOSED' });
    expect(t.engine.providerBreakers('*').filter((b) => b.state !== 'CLOSED')).toEqual([]);
    for (const tenantId of ['heal-quiet', 'heal-a', 'heal-b']) {
      expect((await t.events(tenantId)).map((e) => `${e.oldState}->${e.newState}`)).toEqual(['TIER_0->TIER_1', 'TIER_1->TIER_0', 'TIER_0->TIER_0']);
    }
    // one consent request for the one incident, its answer cleared once the primary passed its probes
    expect((await t.events('heal-careful')).map((e) => e.newState)).toEqual(['CONSENT_PENDING', 'CONSENT_APPROVED', 'TIER_1', 'TIER_0', 'TIER_0', 'CONSENT_RESET']);
    // and still one after a while back on the healed primary
    for (let s = 0; s < 30; s++) {
      t.clock.advance(1_000);
      for (const tenantId of tenants) t.send(span(t.at({ tenantId })));
      t.engine.tick();
    }
    expect((await t.events('heal-careful')).filter((e) => e.newState === 'CONSENT_PENDING')).toHaveLength(1);
    for (const tenantId of tenants) expect(t.bus.latest(tenantId)).toMatchObject({ action: 'ALLOW', state: 'CLOSED' });
  });

  it('a failed probe demotes at once and doubles the window before the next try', async () => {
    const t = await degraded('rec2');
    t.clock.advance(90_000);
    t.engine.tick();
    expect(t.bus.latest('rec2')).toMatchObject({ action: 'ALLOW', tier: 0, state: 'HALF_OPEN' });
    t.clock.advance(500);
    t.send(failed(t.at({ tenantId: 'rec2' })));
    const failedAt = t.clock.ms;
    expect(t.bus.latest('rec2')).toMatchObject({ action: 'DEGRADE', tier: 1, state: 'OPEN' });
    expect(t.engine.status('rec2').tracks[0]).toMatchObject({ state: 'DEGRADED', recoveryWindowMs: 120_000 });

    t.clock.advance(119_000);
    t.engine.tick();
    expect(t.bus.latest('rec2').tier).toBe(1);
    t.clock.advance(1_000);
    t.engine.tick();
    expect(t.bus.latest('rec2')).toMatchObject({ tier: 0, state: 'HALF_OPEN' });
    expect(t.clock.ms - failedAt).toBe(120_000);

    const log = await t.events('rec2');
    expect(log.map((e) => `${e.oldState}->${e.newState}`)).toEqual(['TIER_0->TIER_1', 'TIER_1->TIER_0', 'TIER_0->TIER_1', 'TIER_1->TIER_0']);
    expect(JSON.parse(log[2]!.details)).toMatchObject({ cause: 'probe_failed', trigger: { kind: 'probe_failed' } });
  });

  it('a call that started before the promotion is not a probe', async () => {
    const t = await degraded('rec3');
    t.clock.advance(90_000);
    t.engine.tick();
    expect(t.bus.latest('rec3')).toMatchObject({ tier: 0, state: 'HALF_OPEN' });
    // in flight on the primary since before it was degraded, and exported late
    t.send(failed(t.at({ tenantId: 'rec3', endMs: t.clock.ms + 100, durationMs: 5_000 })));
    expect(t.bus.latest('rec3')).toMatchObject({ tier: 0, state: 'HALF_OPEN' });
    expect(t.engine.status('rec3').tracks[0]).toMatchObject({ state: 'PROBING', probesLeft: 3 });
  });

  it('a suspended tenant resumes by itself', async () => {
    const t = setup(policy({ 'resume-strict': { permittedTiers: [0, 4] } }));
    t.send(...times(6, () => failed(t.at({ tenantId: 'resume-strict' }))));
    expect(t.bus.latest('resume-strict')).toMatchObject({ action: 'HALT', tier: 4 });
    // own breaker: open 30 s, then a 60 s window
    expect(t.bus.latest('resume-strict').retryAfterMs).toBe(90_000);
    t.clock.advance(90_000);
    t.engine.tick();
    expect(t.bus.latest('resume-strict')).toMatchObject({ action: 'ALLOW', tier: 0, degraded: false });
    expect((await t.events('resume-strict')).map((e) => e.newState)).toEqual(['SUSPENDED', 'TIER_0']);
  });
});

describe('latency and cost triggers', () => {
  it("judges each tenant's SLA on its own calls, bounded and forgotten with the tenant", () => {
    const t = setup(policy({}, { triggers: { latencyP95Ms: 5_000, holdMs: 0 } }), { tenantIdleMs: 60_000 });
    const calls = (tenantId: string, durationMs: number) => times(10, () => span(t.at({ tenantId, durationMs })));
    t.send(...calls('own-slow', 30_000), ...calls('own-fast', 300));
    expect(t.bus.latest('own-slow')).toMatchObject({ action: 'DEGRADE', tier: 1, metric: 'latencyP95Ms', observed: 30_000 });
    expect(t.bus.latest('own-fast').action).toBe('ALLOW');
    // a tenant's calls on a model off its ladder are not kept
    t.send(...times(5, () => span(t.at({ tenantId: 'own-fast', requestModel: 'o3' }))));
    expect(t.engine.counts()).toEqual({ tenants: 2, latencyEntries: 2 });
    t.clock.advance(60_000);
    t.engine.evictIdle();
    // own-slow is still degraded and kept; own-fast is at rest and goes, with its latencies
    expect(t.engine.counts()).toEqual({ tenants: 1, latencyEntries: 1 });
  });

  it('degrades when the p95 stays over the SLA, with hysteresis on the way back', async () => {
    let p95 = 6_000;
    const t = setup(policy({ slow: { triggers: { latencyP95Ms: 5_000, holdMs: 10_000, clearFraction: 0.8 } } }), {
      latency: (_tenantId, provider, model) => (provider === 'openai' && model === 'gpt-4o' ? { latencyP95Ms: p95, callsPerMinute: 50 } : { latencyP95Ms: 800, callsPerMinute: 50 }),
    });
    t.send(span(t.at({ tenantId: 'slow' })));
    t.clock.advance(9_999);
    t.engine.tick();
    t.send(span(t.at({ tenantId: 'slow' })));
    expect(t.bus.latest('slow').action).toBe('ALLOW');
    t.clock.advance(1);
    t.engine.tick();
    expect(t.bus.latest('slow')).toMatchObject({ action: 'DEGRADE', tier: 1, scope: 'MODEL', metric: 'latencyP95Ms', threshold: 5_000, observed: 6_000 });

    // under the SLA but above 80 % of it: still over
    p95 = 4_500;
    t.clock.advance(120_000);
    t.engine.tick();
    expect(t.bus.latest('slow').tier).toBe(1);
    p95 = 3_900;
    t.engine.tick();
    const clearedAt = t.clock.ms;
    t.clock.advance(59_999);
    t.engine.tick();
    expect(t.bus.latest('slow').tier).toBe(1);
    t.clock.advance(1);
    t.engine.tick();
    expect(t.bus.latest('slow')).toMatchObject({ action: 'ALLOW', tier: 0, state: 'HALF_OPEN' });
    expect(t.clock.ms - clearedAt).toBe(60_000);
  });

  it('moves a tenant over budget to a cheaper tier, and back only when the better tier would fit', () => {
    let cost = 12;
    const t = setup(policy({ spender: { triggers: { costPerMinuteUsd: 10, holdMs: 0 } } }), {
      tenantMetrics: () => ({ costPerMinuteUsd: cost }),
      prices: () => ({ 'gpt-4o': { input: 2.5, output: 10 }, 'llama-3.1-70b': { input: 0.5, output: 0.5 } }),
    });
    t.send(span(t.at({ tenantId: 'spender' })));
    // tier 1 is gpt-4o too, at the same price: skipped
    expect(t.bus.latest('spender')).toMatchObject({ action: 'DEGRADE', tier: 2, scope: 'TENANT', metric: 'costPerMinuteUsd' });
    cost = 9;
    t.engine.tick();
    expect(t.bus.latest('spender')).toMatchObject({ action: 'DEGRADE', tier: 2 });
    // cheaper now, but gpt-4o costs 12.5× llama: 1 USD/min would be 12.5 there, over budget
    cost = 1;
    t.clock.advance(300_000);
    t.engine.tick();
    expect(t.bus.latest('spender').tier).toBe(2);
    cost = 0.5;
    t.engine.tick();
    t.clock.advance(60_000);
    t.engine.tick();
    expect(t.bus.latest('spender').tier).toBe(1);
  });
});

describe('quota', () => {
  it('throttles a tenant over its token bucket with the wait the bucket computes', () => {
    const t = setup(policy({ bucket: { quota: { requestsPerMinute: 600, tokensPerMinute: 6_000 } } }));
    // 4 calls of 1100 tokens: 1600 left, and calls of 1100 still fit
    t.send(...times(4, () => span(t.at({ tenantId: 'bucket', inputTokens: 1_000, outputTokens: 100 }))));
    expect(t.bus.latest('bucket').action).toBe('ALLOW');
    // one more: 500 left, and the SDK says the next call is about 2000 tokens
    t.send(span(t.at({ tenantId: 'bucket', inputTokens: 1_000, outputTokens: 100, attrs: { 'breakwater.preflight.tokens': 2_000 } })));
    // 1500 missing at 100 tokens/s
    expect(t.bus.latest('bucket')).toMatchObject({ action: 'THROTTLE', scope: 'TENANT', metric: 'tokensPerMinute', threshold: 6_000, observed: 500, retryAfterMs: 15_000 });
    expect(t.engine.reserve('bucket', 2_000)).toMatchObject({ granted: false, retryAfterMs: 15_000 });
    t.clock.advance(14_999);
    t.engine.tick();
    expect(t.bus.latest('bucket').action).toBe('THROTTLE');
    t.clock.advance(1);
    t.engine.tick();
    expect(t.bus.latest('bucket').action).toBe('ALLOW');
    expect(t.engine.reserve('bucket', 2_000)).toMatchObject({ granted: true, retryAfterMs: 0 });
    // a reserved call is not debited twice: only what it used beyond the estimate
    t.send(span(t.at({ tenantId: 'bucket', inputTokens: 1_500, outputTokens: 600, attrs: { 'breakwater.preflight.tokens': 2_000, 'breakwater.preflight.reserved': true } })));
    expect(t.engine.status('bucket').quota?.tokens).toBe(-100);
    expect(t.engine.status('bucket').quota?.requests).toBe(599);
    expect(t.engine.reserve('other-tenant', 1_000_000).granted).toBe(true);
  });

  it('reports quota telemetry per provider key with WARN at 70 % and 90 %', () => {
    const changes: QuotaLevelChange[] = [];
    const t = setup(policy(), { onQuotaLevel: (c) => changes.push(c) });
    const withHeaders = (remaining: number) =>
      span(t.at({ tenantId: 'keys', rateLimitLimitRequests: 100, rateLimitRemainingRequests: remaining, rateLimitLimitTokens: 10_000, rateLimitRemainingTokens: 9_000, attrs: { 'gen_ai.provider.key': 'team-a' } }));
    t.send(withHeaders(80));
    expect(t.bus.latest('keys').action).toBe('ALLOW');
    t.send(withHeaders(25));
    expect(t.bus.latest('keys')).toMatchObject({ action: 'WARN', metric: 'quotaUtilization', threshold: 0.7, observed: 0.75, scope: 'PROVIDER' });
    t.send(withHeaders(5));
    expect(t.bus.latest('keys')).toMatchObject({ action: 'WARN', threshold: 0.9, observed: 0.95 });
    expect(t.engine.quotaTelemetry()).toMatchObject([{ key: 'team-a', provider: 'openai', utilization: 0.95, axis: 'requests', level: 'CRITICAL' }]);
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['OK->WARN', 'WARN->CRITICAL']);
    // stale headers say nothing
    t.clock.advance(60_000);
    t.engine.tick();
    expect(t.bus.latest('keys').action).toBe('ALLOW');
  });
});

describe('tasks', () => {
  it('runs of a task with its own ladder get their own decision, never the default ladder\'s', () => {
    const coderLadder = [{ tier: 0, provider: 'anthropic', model: 'claude-sonnet-4-5' }, { tier: 2, provider: 'vllm', model: 'qwen-coder' }];
    const t = setup(policy({ tasky: { tasks: { code_generation: { tiers: coderLadder }, embeddings: { permittedTiers: [0, 4] } } } }));
    t.send(span(t.at({ tenantId: 'tasky', runId: 'coder', provider: 'anthropic', requestModel: 'claude-sonnet-4-5', attrs: { 'breakwater.task': 'code_generation' } })));
    t.send(span(t.at({ tenantId: 'tasky', runId: 'embedder', operation: 'embeddings' })));
    t.send(span(t.at({ tenantId: 'tasky', runId: 'writer' })));
    t.send(...times(8, () => failed(t.at({ tenantId: 'tasky', runId: 'writer' }))));
    // default ladder: azure; the embeddings task permits no fallback: suspended; the coder's primary is fine
    expect(t.bus.latest('tasky', 'writer')).toMatchObject({ action: 'DEGRADE', tier: 1, fallbackModel: 'gpt-4o' });
    expect(t.bus.latest('tasky', 'embedder')).toMatchObject({ action: 'HALT', tier: 4 });
    expect(t.bus.latest('tasky', 'coder').action).toBe('ALLOW');
    expect(t.bus.latest('tasky').action).toBe('ALLOW');
    expect(t.engine.status('tasky').tracks.map((tr) => `${tr.task || 'default'}:${tr.state}`).sort()).toEqual(['code_generation:PRIMARY', 'default:DEGRADED', 'embeddings:SUSPENDED']);
    // the runs with a decision of their own are the ones the windows must keep (never evicted for room)
    expect(['writer', 'embedder', 'coder'].map((runId) => t.engine.holdsDecision('tasky', runId))).toEqual([true, true, false]);
  });
});

describe('restart', () => {
  it('resumes a degraded tenant from the audit log instead of sending it back to a failing primary', async () => {
    const t = setup(policy());
    t.send(...times(8, () => failed(t.at({ tenantId: 'restart' }))));
    expect(t.bus.latest('restart').tier).toBe(1);
    await t.engine.flush();

    const clock = new Clock(t.clock.ms + 1_000);
    const bus = new DecisionBus({ now: clock.now });
    const engine = new DegradationEngine({ bus, audit: sharedAudit, policy: () => policy(), now: clock.now });
    expect(await engine.restore(store.client)).toBeGreaterThanOrEqual(1);
    expect(bus.latest('restart')).toMatchObject({ action: 'DEGRADE', tier: 1, fallbackModel: 'gpt-4o' });
    clock.advance(59_999);
    engine.tick();
    expect(bus.latest('restart').tier).toBe(1);
    clock.advance(1);
    engine.tick();
    expect(bus.latest('restart')).toMatchObject({ action: 'ALLOW', tier: 0, state: 'HALF_OPEN' });
    await engine.flush();
  });
});
