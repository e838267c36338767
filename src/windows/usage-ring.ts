// The rolling usage of a run or a tenant: one per-second ring whose buckets hold, side by side,
// tokens and cost (amounts) and tool calls, model calls and errored calls (counts), so the token
// velocities, the per-minute figures and the 60 s error ratio all share the same 60 buckets.

import { RollingCounter } from './rolling-counter.js';
import type { SpanFacts } from './span-facts.js';
import { SHORT_WINDOW_SECONDS, WINDOW_SECONDS } from './window-time.js';

const TOKENS = 0;
const COST = 1;
const TOOL_CALLS = 0;
const MODEL_CALLS = 1;
const ERRORS = 2;
const AMOUNT_COLUMNS = 2;
const COUNT_COLUMNS = 3;

export interface UsageRates {
  tokens10s: number;
  tokens60s: number;
  toolCalls60s: number;
  modelCalls60s: number;
  /** errored steps in the last 60 s */
  errors60s: number;
  cost60s: number;
}

export const NO_USAGE: Readonly<UsageRates> = Object.freeze({
  tokens10s: 0,
  tokens60s: 0,
  toolCalls60s: 0,
  modelCalls60s: 0,
  errors60s: 0,
  cost60s: 0,
});

/** Whether a span changes a usage ring at all (lets runs skip allocating one). */
export function carriesUsage(f: SpanFacts): boolean {
  return f.isStep || f.tokens > 0;
}

export class UsageRing extends RollingCounter {
  /**
   * @param compact Float32 amounts and Uint16 counts (840 bytes) for a run; otherwise Float64 and
   *   Uint32 (1 680 bytes) for a tenant, which sums many runs.
   */
  constructor(compact: boolean) {
    super(
      compact
        ? { amounts: AMOUNT_COLUMNS, amountType: Float32Array, counts: COUNT_COLUMNS, countType: Uint16Array }
        : { amounts: AMOUNT_COLUMNS, amountType: Float64Array, counts: COUNT_COLUMNS, countType: Uint32Array },
      WINDOW_SECONDS,
    );
  }

  /** Add an in-window span; the ring is first advanced to the store's window second. */
  addSpan(f: SpanFacts, windowSecond: number): void {
    this.advance(windowSecond);
    const slot = this.slot(f.endSec);
    if (slot < 0) return;
    if (f.tokens > 0) this.addAmountAt(slot, TOKENS, f.tokens);
    if (f.costUsd > 0) this.addAmountAt(slot, COST, f.costUsd);
    if (f.toolCalls > 0) this.addCountAt(slot, TOOL_CALLS, f.toolCalls);
    if (f.kind === 'model') this.addCountAt(slot, MODEL_CALLS);
    if (f.isErrorCall) this.addCountAt(slot, ERRORS);
  }

  /** All figures in one pass over the last 60 s of buckets. */
  rates(windowSecond: number): UsageRates {
    let tokens10s = 0;
    let tokens60s = 0;
    let cost60s = 0;
    let toolCalls60s = 0;
    let modelCalls60s = 0;
    let errors60s = 0;
    const [from, to] = this.readRange(windowSecond, WINDOW_SECONDS);
    const shortFrom = windowSecond - SHORT_WINDOW_SECONDS + 1;
    const a = this.amounts;
    const c = this.counts;
    for (let s = from; s <= to; s++) {
      const bucket = this.bucketOf(s);
      const tokens = a[bucket * AMOUNT_COLUMNS + TOKENS] ?? 0;
      tokens60s += tokens;
      if (s >= shortFrom) tokens10s += tokens;
      cost60s += a[bucket * AMOUNT_COLUMNS + COST] ?? 0;
      toolCalls60s += c[bucket * COUNT_COLUMNS + TOOL_CALLS] ?? 0;
      modelCalls60s += c[bucket * COUNT_COLUMNS + MODEL_CALLS] ?? 0;
      errors60s += c[bucket * COUNT_COLUMNS + ERRORS] ?? 0;
    }
    return { tokens10s, tokens60s, toolCalls60s, modelCalls60s, errors60s, cost60s };
  }
}
