import { describe, expect, it } from 'vitest';
import { allowDecision, type DecisionDraft } from '../../src/contracts/decision.js';
import { SourcedDecisionBus } from '../../src/decisions/sourced-decision-bus.js';
import { Clock } from '../degradation/helpers.js';

function draft(action: DecisionDraft['action'], extra: Partial<DecisionDraft> = {}): DecisionDraft {
  return { ...allowDecision('t1'), action, state: action === 'ALLOW' ? 'CLOSED' : 'OPEN', ...extra };
}

describe('SourcedDecisionBus', () => {
  it("keeps the breaker's and the degradation path's decisions from replacing each other", () => {
    const bus = new SourcedDecisionBus({ now: new Clock().now });
    const degradation = bus.sink('degradation');
    degradation.publish(draft('DEGRADE', { tier: 2, fallbackModel: 'llama', degraded: true }));
    // the tenant breaker evaluates and has nothing to say: the DEGRADE stands
    bus.publish(draft('ALLOW'));
    expect(bus.latest('t1')).toMatchObject({ action: 'DEGRADE', tier: 2 });
    // the breaker halts the tenant: HALT governs while it lasts
    bus.publish(draft('HALT', { retryAfterMs: 30_000, metric: 'costPerMinuteUsd' }));
    expect(bus.latest('t1')).toMatchObject({ action: 'HALT', metric: 'costPerMinuteUsd' });
    // the degradation path promotes back: the breaker's HALT is not retracted by it
    degradation.publish(draft('ALLOW'));
    expect(bus.latest('t1')).toMatchObject({ action: 'HALT' });
    bus.publish(draft('ALLOW'));
    expect(bus.latest('t1').action).toBe('ALLOW');
    expect(bus.latestFrom('degradation', 't1')).toBeUndefined();
  });

  it('on a tie the degradation decision (with its tier and model) is the one the agent sees', () => {
    const bus = new SourcedDecisionBus();
    bus.publish(draft('ALLOW', { state: 'HALF_OPEN', reason: 'probing' }));
    bus.sink('degradation').publish(draft('ALLOW', { tier: 0, fallbackModel: 'gpt-4o', degraded: false }));
    expect(bus.latest('t1')).toMatchObject({ action: 'ALLOW', tier: 0, fallbackModel: 'gpt-4o' });
  });

  it('holds nothing for plain ALLOWs and forgets runs', () => {
    const bus = new SourcedDecisionBus();
    bus.publish({ ...draft('ALLOW'), runId: 'r1' });
    bus.sink('degradation').publish({ ...draft('ALLOW'), runId: 'r1' });
    expect(bus.storedDecisions()).toBe(0);
    bus.sink('degradation').publish({ ...draft('THROTTLE', { retryAfterMs: 1_000 }), runId: 'r1' });
    expect(bus.latestFrom('degradation', 't1', 'r1')).toMatchObject({ action: 'THROTTLE' });
    bus.forgetRun('t1', 'r1');
    expect(bus.latestFrom('degradation', 't1', 'r1')).toBeUndefined();
    expect(bus.latest('t1', 'r1').action).toBe('ALLOW');
  });
});
