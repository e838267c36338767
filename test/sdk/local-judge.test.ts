// The SDK's local judge against the server's BreakerEngine on the same random span sequences: at
// every step the SDK's run decision (the local HALT it made at once, else the server decisions it
// was sent) and the server's decision after observing the span must agree on HALT / not HALT and
// on the crossing, through cooldowns, probes and operator resets, disables and forced opens.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/app/log.js';
import type { AuditLog } from '../../src/audit/audit-log.js';
import type { AnomalyDetector } from '../../src/breakers/anomaly.js';
import { BreakerEngine } from '../../src/breakers/breaker-engine.js';
import type { Decision } from '../../src/contracts/decision.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import type { EffectivePolicy, Thresholds } from '../../src/policy/policy-types.js';
import type { PolicyStore } from '../../src/policy/policy-store.js';
import { DecisionCache, mostSevereEntry } from '../../src/sdk/decision-cache.js';
import { applicableDecisions, LOCAL_CONFIRM_MS, LocalJudge, type LocalPolicy } from '../../src/sdk/local-judge.js';
import { WindowStore } from '../../src/windows/window-store.js';
import { blankAgentSpan } from '../helpers/agent-span.js';

const T = 'tenant-local';
const START = Date.UTC(2026, 11, 3, 12);
const OPERATIONS = ['chat', 'execute_tool', 'invoke_agent', 'embeddings', 'workflow', ''] as const;

const stepArb = fc.record({
  operation: fc.constantFrom(...OPERATIONS),
  depth: fc.integer({ min: -1, max: 5 }),
  advanceMs: fc.integer({ min: 0, max: 4_000 }),
  // negative: the span ends ahead of the clock (past 5 s it is clamped)
  endLagMs: fc.integer({ min: -8_000, max: 3_000 }),
  durationMs: fc.integer({ min: 0, max: 40_000 }),
  parent: fc.option(fc.nat(), { nil: undefined }),
  tokens: fc.nat({ max: 5_000 }),
  isError: fc.boolean(),
  // the export's answer before or after the server's decision reaches the SDK
  ackFirst: fc.boolean(),
  operator: fc.constantFrom('none', 'none', 'none', 'none', 'tick', 'reset', 'disable', 'force'),
});

const policyArb = (extra: boolean) =>
  fc.record({
    stepCount: fc.option(fc.integer({ min: 0, max: 25 }), { nil: undefined }),
    subAgentDepth: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    durationSeconds: fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }),
    // metrics the SDK leaves to the server
    toolCallsPerMinute: extra ? fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }) : fc.constant(undefined),
    tokenVelocity10s: extra ? fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }) : fc.constant(undefined),
    errorRatio: extra ? fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }) : fc.constant(undefined),
    warnFraction: fc.double({ min: 0.1, max: 0.95, noNaN: true }),
    cooldownMs: fc.integer({ min: 0, max: 8_000 }),
    probeSteps: fc.integer({ min: 1, max: 3 }),
  });

type Step = (typeof stepArb extends fc.Arbitrary<infer S> ? S : never);
type PolicyDraft = (typeof policyArb extends (extra: boolean) => fc.Arbitrary<infer P> ? P : never);

function effectivePolicy(p: PolicyDraft): EffectivePolicy {
  const run: Thresholds = {};
  for (const metric of ['stepCount', 'subAgentDepth', 'durationSeconds', 'toolCallsPerMinute', 'tokenVelocity10s', 'errorRatio'] as const) {
    if (p[metric] !== undefined) run[metric] = p[metric];
  }
  return {
    tenantId: T,
    tier: 'test',
    run,
    tenant: {},
    breaker: { cooldownMs: p.cooldownMs, maxCooldownMs: 60_000, cooldownMultiplier: 2, probeSteps: p.probeSteps },
    errorRatio: { minCalls: 2, lastN: 10 },
    warnFraction: p.warnFraction,
  };
}

/** The policy as the SDK reads it from the API (policy-client.ts). */
function sentPolicy(p: EffectivePolicy): LocalPolicy {
  return { run: p.run, warnFraction: p.warnFraction, cooldownMs: p.breaker.cooldownMs };
}

/** local HALTs made over a property's runs: the property must have exercised them */
let localHalts = 0;

const ms = (t: number) => BigInt(Math.round(t)) * 1_000_000n;

async function differential(policyDraft: PolicyDraft, steps: Step[], mode: 'equal' | 'localImpliesServer'): Promise<void> {
  let now = START;
  const clock = () => now;
  const policy = effectivePolicy(policyDraft);
  const bus = new DecisionBus({ now: clock });
  const audit = { record: () => undefined, append: async (input: object) => ({ ...input }) } as unknown as AuditLog;
  const log = { error: () => {}, warn: () => {}, info: () => {} } as unknown as Logger;
  const engine = new BreakerEngine({
    windows: new WindowStore({ now: clock, errorRatio: () => policy.errorRatio }),
    policy: { forTenant: () => policy } as unknown as PolicyStore,
    bus,
    audit,
    anomaly: { check: () => [] } as unknown as AnomalyDetector,
    log,
    now: clock,
  });
  const runId = 'run-1';
  const subscription = bus.subscribe(T);
  // The SDK side: its cache of server decisions and its local judge, as Breakwater wires them.
  const cache = new DecisionCache();
  cache.beginGeneration();
  const judge = new LocalJudge({ tenantId: T });
  judge.setPolicy(sentPolicy(policy));
  const deliver = async () => {
    while (subscription.pending > 0) {
      const { value } = await subscription.next();
      const decision = value as Decision;
      cache.apply(decision, now);
      judge.serverDecision(decision);
    }
  };
  const sdkDecision = () => mostSevereEntry(applicableDecisions(cache, judge, runId, now, { connected: true, stale: false }))?.decision;
  const compare = (where: string, local: Decision | undefined) => {
    const server = bus.latest(T, runId);
    const sdk = sdkDecision();
    const sdkHalts = sdk?.action === 'HALT';
    const serverHalts = server.action === 'HALT';
    if (mode === 'equal') expect(sdkHalts, `${where}: SDK ${sdk?.reason ?? 'ALLOW'} / server ${server.reason}`).toBe(serverHalts);
    else if (sdk?.source === 'local') expect(serverHalts, `${where}: local ${sdk.reason} / server ${server.reason}`).toBe(true);
    if (local !== undefined && mode === 'equal') {
      // The crossing the SDK decided at once is the one the server tripped on.
      expect({ metric: local.metric, threshold: local.threshold, observed: local.observed }).toEqual({
        metric: server.metric,
        threshold: server.threshold,
        observed: server.observed,
      });
    }
  };
  await deliver();

  const spanIds: string[] = [];
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    now += s.advanceMs;
    // The server's ticker pushes what time changed (cooldowns over, forced opens expired) before the span.
    engine.tick();
    await deliver();
    const spanId = (i + 1).toString(16).padStart(16, '0');
    const end = now - s.endLagMs;
    const span = blankAgentSpan({
      tenantId: T,
      runId,
      traceId: '1'.padStart(32, '0'),
      spanId,
      parentSpanId: s.parent === undefined || spanIds.length === 0 ? '' : spanIds[s.parent % spanIds.length]!,
      operation: s.operation,
      depth: s.depth,
      startTimeUnixNano: ms(end - s.durationMs),
      endTimeUnixNano: ms(end),
      inputTokens: s.tokens,
      outputTokens: s.tokens >> 1,
      isError: s.isError,
    });
    spanIds.push(spanId);

    // The span ends: the SDK judges it at once; then the server receives and judges it.
    const local = judge.record(span, now);
    if (local !== undefined) localHalts++;
    engine.observe([span], performance.now());
    compare(`step ${i} (${s.operation})`, local);

    if (s.ackFirst) judge.accepted([{ runId, spanId }], now);
    await deliver();
    if (!s.ackFirst) judge.accepted([{ runId, spanId }], now);
    compare(`step ${i} delivered`, undefined);

    if (s.operator === 'tick') engine.tick();
    else if (s.operator === 'reset') await engine.reset(T, runId, 'operator');
    else if (s.operator === 'disable') await engine.disable(T, runId, 'maintenance', 'operator');
    else if (s.operator === 'force') await engine.forceOpen(T, runId, 'look into it', 'operator', 1 + s.advanceMs);
    await deliver();
    compare(`after ${s.operator}`, undefined);
  }
  subscription.return?.();
}

describe('the local judge and the server never disagree on the same spans', () => {
  it('halts exactly when the BreakerEngine halts, on the same crossing, with run thresholds the SDK can judge', async () => {
    await fc.assert(
      fc.asyncProperty(policyArb(false), fc.array(stepArb, { minLength: 1, maxLength: 60 }), (policy, steps) => differential(policy, steps, 'equal')),
      { numRuns: 300 },
    );
    expect(localHalts).toBeGreaterThan(100);
  });

  it('with thresholds the SDK leaves to the server as well, halts locally only where the server halts', async () => {
    await fc.assert(
      fc.asyncProperty(policyArb(true), fc.array(stepArb, { minLength: 1, maxLength: 60 }), (policy, steps) => differential(policy, steps, 'localImpliesServer')),
      { numRuns: 200 },
    );
  });

  it('decides nothing without the thresholds from the server', () => {
    const judge = new LocalJudge({ tenantId: T });
    for (let i = 0; i < 5; i++) {
      const spanId = (i + 1).toString(16).padStart(16, '0');
      const span = blankAgentSpan({ tenantId: T, runId: 'r', spanId, operation: 'chat', startTimeUnixNano: ms(START), endTimeUnixNano: ms(START + 1) });
      expect(judge.record(span, START)).toBeUndefined();
    }
    judge.setPolicy({ run: { stepCount: 5 }, warnFraction: 0.8, cooldownMs: 1_000 });
    const sixth = blankAgentSpan({ tenantId: T, runId: 'r', spanId: '06'.padStart(16, '0'), operation: 'chat', startTimeUnixNano: ms(START), endTimeUnixNano: ms(START + 1) });
    expect(judge.record(sixth, START)).toMatchObject({ action: 'HALT', metric: 'stepCount', observed: 6, threshold: 5, source: 'local' });
  });
});

describe("the server's decision wins where it differs", () => {
  const policy: LocalPolicy = { run: { stepCount: 2 }, warnFraction: 0.5, cooldownMs: 60_000 };
  const step = (i: number, runId = 'r') =>
    blankAgentSpan({ tenantId: T, runId, spanId: i.toString(16).padStart(16, '0'), operation: 'execute_tool', startTimeUnixNano: ms(START), endTimeUnixNano: ms(START + 1) });
  const server = (over: Partial<Decision>): Decision => ({
    tenantId: T,
    runId: 'r',
    scope: 'RUN',
    action: 'ALLOW',
    state: 'CLOSED',
    reason: '',
    metric: '',
    threshold: 0,
    observed: 0,
    retryAfterMs: 0,
    sequence: 7,
    issuedAt: new Date(START).toISOString(),
    ...over,
  });
  /** a judge whose run r has just crossed stepCount 2 at its third step */
  const crossed = () => {
    const judge = new LocalJudge({ tenantId: T });
    judge.setPolicy(policy);
    judge.record(step(1), START);
    judge.record(step(2), START);
    expect(judge.record(step(3), START)).toMatchObject({ action: 'HALT', source: 'local' });
    return judge;
  };

  it('a WARN the server issued before it saw the crossing span does not lift the local HALT', () => {
    const judge = crossed();
    judge.serverDecision(server({ action: 'WARN', metric: 'stepCount', observed: 2, threshold: 2 }));
    expect(judge.decision('r', START, true)).toMatchObject({ action: 'HALT', source: 'local' });
  });

  it('once the server accepted the crossing span, its later ALLOW (an operator reset) wins', () => {
    const judge = crossed();
    judge.accepted([{ runId: 'r', spanId: step(3).spanId }], START);
    judge.serverDecision(server({ reason: 'reset by operator' }));
    expect(judge.decision('r', START, true)).toBeUndefined();
  });

  it("the server's HALT, a DISABLED or a HALF_OPEN breaker replace it at once", () => {
    for (const over of [{ action: 'HALT', state: 'OPEN' }, { state: 'DISABLED' }, { state: 'HALF_OPEN' }] as Partial<Decision>[]) {
      const judge = crossed();
      judge.serverDecision(server(over));
      expect(judge.decision('r', START, true)).toBeUndefined();
    }
  });

  it('no local HALT while the server says the breaker is DISABLED or already open', () => {
    for (const state of ['DISABLED', 'OPEN', 'FORCED_OPEN'] as const) {
      const judge = new LocalJudge({ tenantId: T });
      judge.setPolicy(policy);
      judge.serverDecision(server({ state, action: state === 'DISABLED' ? 'ALLOW' : 'HALT' }));
      for (let i = 1; i <= 5; i++) expect(judge.record(step(i), START)).toBeUndefined();
    }
  });

  it('lapses when the server, having accepted the crossing span, does not confirm it, but not while the server cannot be heard', () => {
    const judge = crossed();
    judge.accepted([{ runId: 'r', spanId: step(3).spanId }], START);
    expect(judge.decision('r', START + LOCAL_CONFIRM_MS + 1, false)).toMatchObject({ action: 'HALT' });
    expect(judge.decision('r', START + LOCAL_CONFIRM_MS, true)).toMatchObject({ action: 'HALT' });
    expect(judge.decision('r', START + LOCAL_CONFIRM_MS + 1, true)).toBeUndefined();
  });

  it('lapses after the cooldown, as the server turns HALF_OPEN', () => {
    const judge = crossed();
    expect(judge.decision('r', START + policy.cooldownMs - 1, false)).toMatchObject({ action: 'HALT' });
    expect(judge.decision('r', START + policy.cooldownMs, false)).toBeUndefined();
  });
});

describe("the judge's memory", () => {
  it('holds at most maxRuns runs, forgetting the least recently recorded first', () => {
    const judge = new LocalJudge({ tenantId: T, maxRuns: 5 });
    judge.setPolicy({ run: { stepCount: 2 }, warnFraction: 0.8, cooldownMs: 1_000 });
    let n = 0;
    const step = (runId: string) =>
      blankAgentSpan({ tenantId: T, runId, spanId: (++n).toString(16).padStart(16, '0'), operation: 'chat', depth: 0, startTimeUnixNano: ms(START), endTimeUnixNano: ms(START + 1) });
    for (let r = 0; r < 20; r++) judge.record(step(`run-${r}`), START);
    expect(judge.runCount).toBe(5);
    // run-15 is kept by being recorded again; run-16 is the least recently recorded and goes.
    judge.record(step('run-15'), START);
    judge.record(step('run-20'), START);
    expect(judge.record(step('run-15'), START)).toMatchObject({ action: 'HALT', observed: 3 });
    expect(judge.runCount).toBe(5);
  });
});
