// Consent: a tenant that wants to approve switches is paused, never switched silently.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { openAuditLog } from '../helpers/audit.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import { replayConsents } from '../../src/degradation/consent-replay.js';
import { ConsentError, DegradationEngine } from '../../src/degradation/degradation-engine.js';
import type { AgentSpan } from '../../src/contracts/agent-span.js';
import type { Store } from '../../src/storage/clickhouse.js';
import { Clock, failed, openTestStore, section, span, type SpanInit } from './helpers.js';

const LADDER = [
  { tier: 0, provider: 'openai', model: 'gpt-4o' },
  { tier: 1, provider: 'azure.ai.openai', model: 'gpt-4o' },
  { tier: 2, provider: 'vllm', model: 'llama-3.1-70b' },
];

let store: Store;
let closeStore: () => Promise<void>;
/** one audit log for the file, as one process has; tests use tenants of their own */
let sharedAudit: AuditLog;

beforeAll(async () => {
  ({ store, close: closeStore } = await openTestStore('bw-consent-'));
  sharedAudit = await openAuditLog(store.client);
});

afterAll(async () => {
  await closeStore?.();
});

function setup(tenant: Record<string, unknown> = {}, extra: { p95?: () => number; consentTimeoutMs?: number } = {}) {
  const current = section({
    providerHealth: { minimumCalls: 5, slidingWindowSize: 20, waitDurationOpenMs: 30_000, permittedCallsHalfOpen: 3 },
    defaults: {
      tiers: LADDER,
      consent: { required: true, fromTier: 1, timeoutMs: extra.consentTimeoutMs ?? 300_000 },
      recovery: { windowMs: 60_000, probeCalls: 2 },
      ...tenant,
    },
  });
  return engineOn(new Clock(), current, extra, 'req-');
}

/**
 * An engine with its bus and audit log on the test store. `restart()` stands up another one on the
 * same store and policy a second later, restored from the log as the service does at start.
 */
function engineOn(clock: Clock, current: ReturnType<typeof section>, extra: { p95?: () => number }, idPrefix: string) {
  const bus = new DecisionBus({ now: clock.now });
  const audit = sharedAudit;
  const notified: string[] = [];
  let ids = 0;
  const engine = new DegradationEngine({
    bus: { publish: (d) => bus.publish(d), publishBreakerEvent: (e) => notified.push(`${e.kind}:${e.newState}`) },
    audit,
    policy: () => current,
    now: clock.now,
    newId: () => `${idPrefix}${++ids}`,
    ...(extra.p95 ? { latency: (_tenantId: string, provider: string) => ({ latencyP95Ms: provider === 'openai' ? extra.p95!() : 500, callsPerMinute: 100 }) } : {}),
  });
  const send = (...spans: AgentSpan[]) => engine.observe(spans, 0);
  const at = (init: SpanInit = {}): SpanInit => ({ endMs: clock.ms, ...init });
  const log = async (tenantId: string) => {
    await engine.flush();
    return (await audit.list(tenantId, { kinds: ['degradation'], order: 'asc' })).map((e) => `${e.newState}${e.actor === 'breakwater' ? '' : ` by ${e.actor}`}`);
  };
  const storm = (tenantId: string, provider = 'openai', model = 'gpt-4o') => send(...Array.from({ length: 6 }, () => failed(at({ tenantId, provider, requestModel: model }))));
  const restart = async () => {
    await engine.flush();
    const next = engineOn(new Clock(clock.ms + 1_000), current, extra, `${idPrefix}after-restart-`);
    await next.engine.restore(store.client);
    return next;
  };
  return { clock, bus, audit, engine, send, at, log, storm, notified, restart };
}

/**
 * A tenant approved for tier 1 and running there is promoted back to the primary `waitMs` later,
 * and its first call there (a probe) fails: it goes back to tier 1 without being asked again.
 */
function failedProbeReturnsToTier1(t: ReturnType<typeof engineOn>, tenantId: string, waitMs: number): void {
  t.clock.advance(waitMs);
  t.engine.tick();
  expect(t.bus.latest(tenantId)).toMatchObject({ action: 'ALLOW', tier: 0, state: 'HALF_OPEN' });
  t.clock.advance(1_000);
  t.send(failed(t.at({ tenantId })));
  expect(t.bus.latest(tenantId)).toMatchObject({ action: 'DEGRADE', tier: 1 });
  expect(t.engine.pendingConsents(tenantId)).toEqual([]);
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
    // probes passed on the primary: the incident, and the refusal with it, is over (and recorded so)
    expect(await t.log('clinic')).toEqual(['CONSENT_PENDING', 'CONSENT_REFUSED by bob@clinic', 'SUSPENDED', 'TIER_0', 'TIER_0', 'CONSENT_RESET']);
    const [reset] = await t.audit.list('clinic', { kinds: ['degradation'], order: 'desc', limit: 1 });
    expect(reset?.reason).toBe('the incident is over (the primary is healthy): the refusal of tier 1 and worse no longer applies; the next incident asks again');
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
    expect(await t.log('slowcare')).toEqual(['CONSENT_PENDING', 'CONSENT_REFUSED by dave', 'CONSENT_RESET']);
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
    failedProbeReturnsToTier1(t, 'icu', 90_000);
    // now the fallback fails too: tier 2 was never approved
    t.storm('icu', 'azure.ai.openai', 'gpt-4o');
    expect(t.bus.latest('icu')).toMatchObject({ action: 'HALT', tier: 1 });
    expect(t.engine.pendingConsents('icu')).toMatchObject([{ id: 'req-2', to: { tier: 2 } }]);
    expect(await t.log('icu')).toEqual(['CONSENT_PENDING', 'CONSENT_APPROVED by erin', 'TIER_1', 'TIER_0', 'TIER_1', 'CONSENT_PENDING']);
  });
});

describe('consent across a restart', () => {
  it('a refusal holds for the rest of its incident: tier 1 is not offered again', async () => {
    const t = setup({ permittedTiers: [0, 1, 2, 4] });
    t.storm('theatre');
    await t.engine.refuse('theatre', 'req-1', 'bob@theatre', 'no model changes during surgery');
    expect(t.bus.latest('theatre')).toMatchObject({ action: 'HALT', tier: 4 });
    const r = await t.restart();
    expect(r.bus.latest('theatre')).toMatchObject({ action: 'HALT', tier: 4 });
    // The primary still fails (its breaker starts CLOSED and opens again). Past the recovery
    // window tier 1 is clear, and would be asked for, had the tenant not refused it.
    r.storm('theatre');
    r.clock.advance(61_000);
    r.engine.tick();
    expect(r.engine.pendingConsents('theatre')).toEqual([]);
    expect(r.bus.latest('theatre')).toMatchObject({ action: 'HALT', tier: 4 });
    // the primary's own window passes (it left OPEN at +30 s): back without asking
    r.clock.advance(40_000);
    r.engine.tick();
    expect(r.bus.latest('theatre')).toMatchObject({ action: 'ALLOW', tier: 0 });
  });

  it('an approval holds: a failed probe after the restart demotes to the approved tier without asking', async () => {
    const t = setup();
    t.storm('recovery');
    await t.engine.approve('recovery', 'req-1', 'erin');
    const r = await t.restart();
    expect(r.bus.latest('recovery')).toMatchObject({ action: 'DEGRADE', tier: 1 });
    failedProbeReturnsToTier1(r, 'recovery', 60_000);
  });

  it('a request left unanswered is closed in the log as withdrawn, and asked again under a new id', async () => {
    const t = setup();
    t.storm('waiting');
    expect(t.engine.pendingConsents('waiting')).toMatchObject([{ id: 'req-1' }]);
    const r = await t.restart();
    expect(r.engine.pendingConsents('waiting')).toEqual([]);
    await expect(r.engine.approve('waiting', 'req-1', 'late')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    r.storm('waiting');
    // (ids count per engine; the restored one also re-evaluated the other tests' tenants)
    expect(r.engine.pendingConsents('waiting')).toMatchObject([{ id: expect.stringMatching(/^req-after-restart-/), to: { tier: 1 } }]);
    expect(await r.log('waiting')).toEqual(['CONSENT_PENDING', 'CONSENT_WITHDRAWN', 'CONSENT_PENDING']);
    const [, withdrawn] = await r.audit.list('waiting', { kinds: ['degradation'], order: 'asc' });
    expect(withdrawn?.reason).toMatch(/request req-1\) withdrawn: Breakwater restarted before an answer/);
    expect((await r.audit.verify('waiting')).ok).toBe(true);
  });

  it('answers from an incident that ended stay ended', async () => {
    let p95 = 9_000;
    const t = setup({ triggers: { latencyP95Ms: 5_000, holdMs: 0 } }, { p95: () => p95 });
    t.send(span(t.at({ tenantId: 'ended' })));
    await t.engine.refuse('ended', 'req-1', 'dave');
    p95 = 1_000;
    t.engine.tick();
    // slow again by the time of the restart: the refusal, had it been brought back, would hold
    p95 = 9_000;
    const r = await t.restart();
    r.send(span(r.at({ tenantId: 'ended' })));
    expect(r.engine.pendingConsents('ended')).toMatchObject([{ id: expect.stringMatching(/^req-after-restart-/) }]);
    expect(await r.log('ended')).toEqual(['CONSENT_PENDING', 'CONSENT_REFUSED by dave', 'CONSENT_RESET', 'CONSENT_PENDING']);
  });
});

describe('replayConsents', () => {
  const row = (tenant: string, details: Record<string, unknown>) => ({ TenantId: tenant, Details: JSON.stringify(details) });
  const request = (id: string, tier: number | null) => ({ id, task: '', from: { tier: 0, provider: 'a', model: 'm' }, to: { tier, provider: 'b', model: 'm' } });

  it('keeps the answers after the last reset, per tenant and task, and skips rows that do not parse', () => {
    const answers = replayConsents([
      row('t1', { event: 'consent_requested', task: '', request: request('r1', 3) }),
      row('t1', { event: 'consent_refused', task: '', request: request('r1', 3) }),
      row('t1', { event: 'consents_cleared', task: '' }),
      row('t1', { event: 'consent_approved', task: '', request: request('r2', 1) }),
      row('t1', { event: 'consent_expired', task: '', request: request('r3', null) }),
      { TenantId: 't1', Details: '{not json' },
      row('t1', { event: 'consent_requested', task: 'code', request: { ...request('r4', 2), task: 'code' } }),
      row('t2', { event: 'consent_requested', task: '', request: request('r5', 1) }),
      row('t2', { event: 'consent_withdrawn', task: '', request: request('r5', 1) }),
    ]);
    expect(answers).toEqual([
      { tenantId: 't1', task: '', approvedUpTo: 1, refusedFrom: 4, pending: null },
      { tenantId: 't1', task: 'code', approvedUpTo: 0, refusedFrom: Infinity, pending: expect.objectContaining({ id: 'r4' }) },
    ]);
  });
});
