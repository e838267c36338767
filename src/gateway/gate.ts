// What the current decision does to one gateway request, before any upstream call: memory only.

import type { Decision } from '../contracts/decision.js';

export type Verdict =
  | { kind: 'pass'; decision: Decision; model?: string; release: () => void }
  | { kind: 'halt'; decision: Decision }
  | { kind: 'throttle'; decision: Decision; retryAfterMs: number; why: string };

/**
 * A HALF_OPEN breaker judges its probes from the calls' spans: admitting more calls at once than it
 * has probe steps would let a failing tenant through by the dozen before the first probe reports.
 * Counts calls in flight per breaker opening (tenant, run, decision sequence).
 */
export class ProbeLimiter {
  readonly #inFlight = new Map<string, number>();

  tryTake(key: string, limit: number): (() => void) | undefined {
    const held = this.#inFlight.get(key) ?? 0;
    if (held >= limit) return undefined;
    this.#inFlight.set(key, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inFlight.get(key) ?? 1) - 1;
      if (left <= 0) this.#inFlight.delete(key);
      else this.#inFlight.set(key, left);
    };
  }

  get size(): number {
    return this.#inFlight.size;
  }
}

const NOTHING = () => {};
/** A THROTTLE without its own delay still waits this long. */
const MIN_THROTTLE_MS = 1_000;

export function judge(decision: Decision, probeSteps: number, probes: ProbeLimiter): Verdict {
  switch (decision.action) {
    case 'HALT':
      return { kind: 'halt', decision };
    case 'THROTTLE':
      return { kind: 'throttle', decision, retryAfterMs: Math.max(MIN_THROTTLE_MS, decision.retryAfterMs), why: decision.reason || 'throttled by Breakwater' };
    default:
      break;
  }
  const model = decision.action === 'DEGRADE' && decision.fallbackModel ? decision.fallbackModel : undefined;
  if (decision.state !== 'HALF_OPEN') return { kind: 'pass', decision, ...(model ? { model } : {}), release: NOTHING };
  const key = `${decision.tenantId}\u0000${decision.runId ?? ''}\u0000${decision.sequence}`;
  const release = probes.tryTake(key, Math.max(1, probeSteps));
  if (release === undefined) {
    return { kind: 'throttle', decision, retryAfterMs: MIN_THROTTLE_MS, why: `the breaker is HALF_OPEN and its ${probeSteps} probe call(s) are in flight` };
  }
  return { kind: 'pass', decision, ...(model ? { model } : {}), release };
}
