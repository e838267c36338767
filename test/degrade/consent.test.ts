// Consent: a tenant that wants to approve switches is paused, never switched silently.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/breaker/audit-log.js';
import { DecisionBus } from '../../src/breaker/decision-bus.js';
import { ConsentError, DegradationEngine } from '../../src/degrade/degradation-engine.js';
import type { AgentSpan } from '../../src/ingest/agent-span.js';
import type { Store } from '../../src/store/clickhouse.js';
import { Clock, failed, openTestStore, section, span, type SpanInit } from './helpers.js';

const LADDER = [
  { tier: 0, provider: 'openai', model: 'gpt-4o' },
  { tier: 1, provider: 'azure.ai.openai', model: 'gpt-4o' },
  { tier: 2, provider: 'vllm', model: 'llama-3.1-70b' },
];

let store: Store;
let closeStore: () => Promise<void>;

beforeAll(async () => {
  ({ store, close: closeStore } = await openTestStore('bw-consent-'));
});

afterAll(async () => {
  await closeStore?.();
});

function setup(tenant: Record<string, unknown> = {}, extra: { p95?: () => number; consentTimeoutMs?: number } = {}) {
  const clock = new Clock();
  const bus = new DecisionBus({ now: clock.now });
  const audit = new AuditLog(store.client, clock.now);
  const notified: string[] = [];
  let ids = 0;
  const current = section({
    providerHealth: { minimumCalls: 5, slidingWindowSize: 20, waitDurationOpenMs: 30_000, permittedCallsHalfOpen: 3 },
    defaults: {
      tiers: LADDER,
      consent: { required: true, fromTier: 1, timeoutMs: extra.consentTimeoutMs ?? 300_000 },
      recovery: { windowMs: 60_000, probeCalls: 2 },
      ...tenant,
    },
  });
  const engine = new DegradationEngine({
    bus: { publish: (d) => bus.publish(d), publishBreakerEvent: (e) => notified.push(`${e.kind}:${e.newState}`) },
    audit,
    policy: () => current,
    now: clock.now,
    newId: () => `req-${++ids}`,
    ...(extra.p95 ? { modelMetrics: (provider: string) => ({ latencyP95Ms: provider === 'openai' ? extra.p95!() : 500, callsPerMinute: 100 }) } : {}),
  });
  const send = (...spans: AgentSpan[]) => engine.observe(spans, 0);
  const at = (init: SpanInit = {}): SpanInit => ({ endMs: clock.ms, ...init });
  const log = async (tenantId: string) => {
    await engine.flush();
    return (await audit.list(tenantId, { kinds: ['degradation'], order: 'asc' })).map((e) => `${e.newState}${e.actor === 'breakwater' ? '' : ` by ${e.actor}`}`);
  };
  const storm = (tenantId: string, provider = 'openai', model = 'gpt-4o') => send(...Array.from({ length: 6 }, () => failed(at({ tenantId, provider, requestModel: model }))));
  return { clock, bus, audit, engine, send, at, log, storm, notified };
}

describe('consent', () => {
  it('pauses the tenant with a pending request; approve() switches it', async () => {
    const t = setup();
    t.storm('hospital');
    const paused = t.bus.latest('hospital');
    expect(paused).toMatchObject({ action: 'HALT', state: 'OPEN', tier: 0, degraded: false, retryAfterMs: 300_000 });
    expect(paused.fallbackModel).toBeUndefined();
    expect(paused.reason).toMatch(/needs approval \(request req-1\)/);
    const [pending] = t.engine.pendingConsents('hospital');
    expect(pending).toMatchObject({ id: 'req-1', task: '', from: { tier: 0, model: 'gpt-4o' }, to: { tier: 1, provider: 'azure.ai.openai', model: 'gpt-4o' } });
    expect(t.engine.status('hospital').tracks[0]?.state).toBe('PENDING_CONSENT');
    // still paused on later evaluations: no second request
    t.clock.advance(1_000);
    t.engine.tick();
    expect(t.engine.pendingConsents('hospital').map((r) => r.id)).toEqual(['req-1']);

    const { request, decision } = await t.engine.approve('hospital', 'req-1', 'alice@hospital');
    expect(request.id).toBe('req-1');
    expect(decision).toMatchObject({ action: 'DEGRADE', tier: 1, fallbackModel: 'gpt-4o', degraded: true });
    expect(t.bus.latest('hospital')).toMatchObject({ action: 'DEGRADE', tier: 1 });
    expect(t.engine.pendingConsents('hospital')).toEqual([]);
    // recorded before approve() returned
    expect(await t.log('hospital')).toEqual(['CONSENT_PENDING', 'CONSENT_APPROVED by alice@hospital', 'TIER_1']);
    expect(t.notified.filter((n) => n.startsWith('degradation:'))).toEqual(['degradation:CONSENT_PENDING', 'degradation:CONSENT_APPROVED', 'degradation:TIER_1']);
    expect(t.notified).toContain('breaker_transition:OPEN');
    expect((await t.audit.verify('hospital')).ok).toBe(true);
  });

  it('refuse() keeps the tenant off the fallback: suspended while the primary is down, back when it recovers', async () => {
    const t = setup({ permittedTiers: [0, 1, 2, 4] });
    t.storm('clinic');
    await t.engine.refuse('clinic', 'req-1', 'bob@clinic', 'no model changes during surgery hours');
    expect(t.bus.latest('clinic')).toMatchObject({ action: 'HALT', tier: 4, degraded: true });
    expect(t.bus.latest('clinic').fallbackModel).toBeUndefined();
    // the refusal holds for the incident: no new request for tier 1 or 2
    for (let i = 0; i < 10; i++) {
      t.clock.advance(1_000);
      t.engine.tick();
    }
    expect(t.engine.pendingConsents('clinic')).toEqual([]);
    // the primary recovers (own breaker half-open at +30 s, window 60 s): back without asking
    t.clock.advance(80_000);
    t.engine.tick();
    expect(t.bus.latest('clinic')).toMatchObject({ action: 'ALLOW', tier: 0, degraded: false });
    t.clock.advance(1_000);
    t.send(span(t.at({ tenantId: 'clinic' })), span(t.at({ tenantId: 'clinic' })));
    expect(t.bus.latest('clinic')).toMatchObject({ action: 'ALLOW', tier: 0, state: 'CLOSED' });
    expect(await t.log('clinic')).toEqual(['CONSENT_PENDING', 'CONSENT_REFUSED by bob@clinic', 'SUSPENDED', 'TIER_0', 'TIER_0']);
  });

  it('a refusal without suspension permitted halts', async () => {
    const t = setup({ permittedTiers: [0, 1, 2] });
    t.storm('lab');
    await t.engine.refuse('lab', 'req-1', 'carol');
    const halted = t.bus.latest('lab');
    expect(halted).toMatchObject({ action: 'HALT', degraded: false });
    expect(halted.tier).toBeUndefined();
  });

  it('a slow primary keeps serving while the request waits, and after a refusal', async () => {
    let p95 = 9_000;
    const t = setup({ triggers: { latencyP95Ms: 5_000, holdMs: 0 } }, { p95: () => p95 });
    t.send(span(t.at({ tenantId: 'slowcare' })));
    // the primary works, only slowly: no pause, a warning that a switch awaits approval
    expect(t.bus.latest('slowcare')).toMatchObject({ action: 'WARN' });
    expect(t.bus.latest('slowcare').reason).toMatch(/awaits approval \(request req-1\)/);
    await t.engine.refuse('slowcare', 'req-1', 'dave');
    expect(t.bus.latest('slowcare').action).toBe('ALLOW');
    t.clock.advance(5_000);
    t.engine.tick();
    expect(t.engine.pendingConsents('slowcare')).toEqual([]);
    p95 = 1_000;
    t.engine.tick();
    expect(await t.log('slowcare')).toEqual(['CONSENT_PENDING', 'CONSENT_REFUSED by dave']);
  });

  it('an unanswered request expires as refused', async () => {
    const t = setup({}, { consentTimeoutMs: 20_000 });
    t.storm('ward');
    t.clock.advance(19_999);
    t.engine.tick();
    expect(t.engine.pendingConsents('ward')).toHaveLength(1);
    t.clock.advance(1);
    await expect(t.engine.approve('ward', 'req-1', 'late')).rejects.toMatchObject({ code: 'EXPIRED' });
    expect(t.bus.latest('ward')).toMatchObject({ action: 'HALT', tier: 4 });
    expect(await t.log('ward')).toEqual(['CONSENT_PENDING', 'CONSENT_EXPIRED', 'SUSPENDED']);
  });

  it('a paused tenant whose primary comes back (breaker half-open) carries on: the request is withdrawn', async () => {
    const t = setup();
    t.storm('nurse');
    expect(t.bus.latest('nurse').action).toBe('HALT');
    t.clock.advance(30_000);
    t.engine.tick();
    expect(t.engine.pendingConsents('nurse')).toEqual([]);
    expect(t.bus.latest('nurse')).toMatchObject({ action: 'ALLOW' });
    expect(await t.log('nurse')).toEqual(['CONSENT_PENDING', 'CONSENT_WITHDRAWN']);
  });

  it('refuses answers to unknown requests and to other tenants', async () => {
    const t = setup();
    t.storm('a-tenant');
    await expect(t.engine.approve('a-tenant', 'nope', 'x')).rejects.toBeInstanceOf(ConsentError);
    await expect(t.engine.approve('another-tenant', 'req-1', 'x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(t.engine.pendingConsents('a-tenant')).toHaveLength(1);
  });

  it('an approval holds for the incident: a failed probe demotes without asking again; a deeper tier asks', async () => {
    const t = setup();
    t.storm('icu');
    await t.engine.approve('icu', 'req-1', 'erin');
    t.clock.advance(90_000);
    t.engine.tick();
    expect(t.bus.latest('icu')).toMatchObject({ action: 'ALLOW', tier: 0, state: 'HALF_OPEN' });
    t.clock.advance(1_000);
    t.send(failed(t.at({ tenantId: 'icu' })));
    expect(t.bus.latest('icu')).toMatchObject({ action: 'DEGRADE', tier: 1 });
    expect(t.engine.pendingConsents('icu')).toEqual([]);
    // now the fallback fails too: tier 2 was never approved
    t.storm('icu', 'azure.ai.openai', 'gpt-4o');
    expect(t.bus.latest('icu')).toMatchObject({ action: 'HALT', tier: 1 });
    expect(t.engine.pendingConsents('icu')).toMatchObject([{ id: 'req-2', to: { tier: 2 } }]);
    expect(await t.log('icu')).toEqual(['CONSENT_PENDING', 'CONSENT_APPROVED by erin', 'TIER_1', 'TIER_0', 'TIER_1', 'CONSENT_PENDING']);
  });
});
