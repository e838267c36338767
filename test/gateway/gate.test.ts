// The gate's rule for each decision, without the network: what passes, what is refused, and how
// many calls a HALF_OPEN breaker lets through at once.

import { describe, expect, it } from 'vitest';
import { allowDecision, type Decision } from '../../src/contracts/decision.js';
import { judge, ProbeLimiter } from '../../src/gateway/gate.js';

const decision = (patch: Partial<Decision>): Decision => ({ ...allowDecision('t', 'r'), sequence: 7, issuedAt: new Date(0).toISOString(), ...patch });

describe('the gate', () => {
  it('refuses HALT, answers THROTTLE with its delay (at least a second), and rewrites DEGRADE to the fallback', () => {
    const probes = new ProbeLimiter();
    expect(judge(decision({ action: 'HALT', state: 'OPEN' }), 1, probes).kind).toBe('halt');
    expect(judge(decision({ action: 'THROTTLE', retryAfterMs: 2500 }), 1, probes)).toMatchObject({ kind: 'throttle', retryAfterMs: 2500 });
    expect(judge(decision({ action: 'THROTTLE', retryAfterMs: 0 }), 1, probes)).toMatchObject({ kind: 'throttle', retryAfterMs: 1000 });
    expect(judge(decision({ action: 'DEGRADE', fallbackModel: 'gpt-4o-mini' }), 1, probes)).toMatchObject({ kind: 'pass', model: 'gpt-4o-mini' });
    expect(judge(decision({ action: 'WARN' }), 1, probes)).not.toHaveProperty('model');
  });

  it('admits exactly probeSteps calls at once while HALF_OPEN, and more as they finish', () => {
    const probes = new ProbeLimiter();
    const halfOpen = decision({ state: 'HALF_OPEN' });
    const admitted = Array.from({ length: 5 }, () => judge(halfOpen, 2, probes));
    expect(admitted.map((v) => v.kind)).toEqual(['pass', 'pass', 'throttle', 'throttle', 'throttle']);
    const first = admitted[0]!;
    if (first.kind !== 'pass') throw new Error('unreachable');
    first.release();
    first.release(); // twice is once
    expect(judge(halfOpen, 2, probes).kind).toBe('pass');
    expect(judge(halfOpen, 2, probes).kind).toBe('throttle');
    // a new opening (another sequence) has probes of its own
    expect(judge(decision({ state: 'HALF_OPEN', sequence: 8 }), 2, probes).kind).toBe('pass');
  });
});
