// Span factory and a controllable clock for the window tests.

import type { AgentSpan } from '../../src/contracts/agent-span.js';
import { blankAgentSpan } from '../helpers/agent-span.js';
import { WindowStore, type EvictionEvent, type WindowStoreOptions } from '../../src/windows/window-store.js';

/** A fixed epoch origin (ms) so window seconds are stable: T0 is a whole second. */
export const T0 = 1_700_000_000_000;

export function ms(epochMs: number): bigint {
  return BigInt(Math.round(epochMs * 1000)) * 1000n;
}

export interface SpanInit extends Partial<AgentSpan> {
  /** end time, epoch ms (default T0) */
  endMs?: number;
  /** duration, ms (default 100) */
  durationMs?: number;
}

let nextSpan = 1;

export function span(init: SpanInit = {}): AgentSpan {
  const { endMs = T0, durationMs = 100, ...rest } = init;
  return blankAgentSpan({
    tenantId: 't1',
    runId: 'r1',
    traceId: 'trace',
    spanId: `s${nextSpan++}`,
    startTimeUnixNano: ms(endMs - durationMs),
    endTimeUnixNano: ms(endMs),
    operation: 'chat',
    ...rest,
  });
}

export class Clock {
  constructor(public ms = T0) {}
  readonly now = (): number => this.ms;
  set(epochMs: number): void {
    this.ms = epochMs;
  }
  advance(deltaMs: number): void {
    this.ms += deltaMs;
  }
}

export const PRICES = {
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
};

/** A store on a controllable clock starting at T0, with small error-ratio settings. */
export function makeStore(options: WindowStoreOptions = {}): {
  clock: Clock;
  store: WindowStore;
  evicted: EvictionEvent[];
} {
  const clock = new Clock(T0);
  const evicted: EvictionEvent[] = [];
  const store = new WindowStore({
    now: clock.now,
    prices: () => PRICES,
    errorRatio: () => ({ minCalls: 3, lastN: 5 }),
    onEvict: (e) => evicted.push(e),
    ...options,
  });
  return { clock, store, evicted };
}
