import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/contracts/decision.js';
import type { Service } from '../../src/app/service.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

// 50 tenants run agents over real OTLP ingest; one tenant's agent falls into a tool-call loop.
// Its run breaker must open, with the decision issued while the crossing batch is processed,
// and no other tenant may see anything but ALLOW.

const TENANTS = Array.from({ length: 50 }, (_, i) => `sim-${String(i).padStart(2, '0')}`);
const RUNAWAY = 'sim-13';
const POLICY = `
tiers:
  free:
    warnFraction: 0.9
    run: { toolCallsPerMinute: 30, stepCount: 1000 }
    tenant: { toolCallsPerMinute: 500 }
`;

let service: Service;

beforeAll(async () => {
  service = await startWithPolicy(POLICY);
});

afterAll(async () => {
  await service?.stop();
});

describe('a runaway tool-call loop among 50 tenants', () => {
  it('halts exactly the runaway run, while processing the batch that crossed the threshold', async () => {
    const bus = service.core.bus;
    const seen = new Map<string, Decision[]>();
    const subscriptions = TENANTS.map((tenant) => {
      const sub = bus.subscribe(tenant);
      seen.set(tenant, []);
      void (async () => {
        for await (const decision of sub) seen.get(tenant)!.push(decision);
      })();
      return sub;
    });

    // Healthy traffic: every tenant, 5 steps per round, 4 rounds.
    for (let round = 0; round < 4; round++) {
      const responses = await Promise.all(
        TENANTS.map((tenant) => postSpans(service.otlpUrl, runSteps(tenant, `${tenant}-run-a`, [{ tool: 'search' }, { model: 'gpt-4o-mini' }, { tool: 'lookup' }, {}, {}]))),
      );
      expect(responses.every((r) => r.status === 200)).toBe(true);
    }

    // The loop: 10 tool calls per batch; the fourth batch takes the run past 30 per minute.
    let haltedAfterBatch = -1;
    for (let batch = 1; batch <= 4; batch++) {
      const before = bus.latest(RUNAWAY, 'loop-run');
      expect(before.action === 'HALT').toBe(false);
      const response = await postSpans(service.otlpUrl, runSteps(RUNAWAY, 'loop-run', Array.from({ length: 10 }, () => ({ tool: 'search' }))));
      expect(response.status).toBe(200);
      // Read synchronously after the 200: the decision was published before the spans were acknowledged.
      if (bus.latest(RUNAWAY, 'loop-run').action === 'HALT') {
        haltedAfterBatch = batch;
        break;
      }
    }
    expect(haltedAfterBatch).toBe(4);

    const halt = bus.latest(RUNAWAY, 'loop-run');
    expect(halt).toMatchObject({ tenantId: RUNAWAY, runId: 'loop-run', scope: 'RUN', action: 'HALT', state: 'OPEN', metric: 'toolCallsPerMinute', threshold: 30, observed: 40 });
    expect(halt.retryAfterMs).toBeGreaterThan(0);
    expect(halt.reason).toMatch(/toolCallsPerMinute/);

    // The runaway tenant's other run is untouched: a run breaker, not a tenant breaker.
    expect(bus.latest(RUNAWAY, `${RUNAWAY}-run-a`).action).toBe('ALLOW');
    expect(bus.latest(RUNAWAY).action).toBe('ALLOW');

    await new Promise((r) => setTimeout(r, 50));
    for (const tenant of TENANTS) {
      const decisions = seen.get(tenant)!;
      if (tenant === RUNAWAY) {
        expect(decisions.some((d) => d.action === 'HALT' && d.runId === 'loop-run')).toBe(true);
      } else {
        expect(decisions.filter((d) => d.action !== 'ALLOW'), `${tenant} saw only ALLOW`).toEqual([]);
        expect(bus.latest(tenant, `${tenant}-run-a`).action).toBe('ALLOW');
      }
    }
    for (const sub of subscriptions) await sub.return?.();

    // The transition is in the tenant's audit log, and the chain verifies.
    // The audit write happens off the decision path: poll for it, bounded.
    let events = await service.core.audit.list(RUNAWAY, { kinds: ['breaker_transition'] });
    for (let i = 0; i < 50 && events.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      events = await service.core.audit.list(RUNAWAY, { kinds: ['breaker_transition'] });
    }
    expect(events.map((e) => [e.runId, e.oldState, e.newState, e.metric])).toContainEqual(['loop-run', 'CLOSED', 'OPEN', 'toolCallsPerMinute']);
    expect((await service.core.audit.verify(RUNAWAY)).ok).toBe(true);
  });

  it('warns before it halts: WARN at the configured fraction of a threshold', async () => {
    // 27 of 30 tool calls = 90 %, the warnFraction in this policy.
    const response = await postSpans(service.otlpUrl, runSteps('sim-07', 'warm-run', Array.from({ length: 27 }, () => ({ tool: 'search' }))));
    expect(response.status).toBe(200);
    expect(service.core.bus.latest('sim-07', 'warm-run')).toMatchObject({ action: 'WARN', state: 'CLOSED', metric: 'toolCallsPerMinute', threshold: 30, observed: 27 });
  });
});
