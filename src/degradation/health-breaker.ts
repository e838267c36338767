// A provider or model health breaker with Resilience4j's semantics:
//
//   CLOSED ── failure rate or slow-call rate ≥ threshold, over ≥ minimumCalls ──▶ OPEN
//   OPEN ── waitDurationOpenMs elapsed ──▶ HALF_OPEN
//   HALF_OPEN ── permittedCallsHalfOpen calls: rates below the thresholds ──▶ CLOSED
//                                               rates at or above them    ──▶ OPEN (wait × multiplier, capped)
//   HALF_OPEN ── maxWaitHalfOpenMs without enough calls (when set) ──▶ OPEN
//
// The window is count-based (the last slidingWindowSize calls) and time-bounded (calls older than
// slidingWindowMs drop out). What counts as a failure is decided by the caller (classify.ts: 5xx,
// timeouts, connection errors; a 429 is never recorded here). Calls reported while OPEN are
// ignored: they were in flight when the breaker opened.
//
// A shared breaker (tenantId '', fed by every tenant) opens only when failures come from at least
// `sharedMinTenants` tenants: one tenant's spans then open only that tenant's own breakers.

import type { ProviderHealthSettings } from './degradation-schema.js';

export type HealthState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';
export type HealthScope = 'PROVIDER' | 'MODEL';

export interface HealthKey {
  scope: HealthScope;
  provider: string;
  /** '' for a PROVIDER breaker */
  model: string;
  /** '' for a shared breaker; the tenant for a tenant's own */
  tenantId: string;
}

export interface HealthCall {
  failure: boolean;
  slow: boolean;
  tenantId: string;
}

export interface HealthRates {
  calls: number;
  failures: number;
  slowCalls: number;
  /** 0 below minimumCalls */
  failureRate: number;
  slowCallRate: number;
  /** tenants with at least one failed or slow call in the window */
  failingTenants: number;
}

export type HealthCause = 'failure_rate' | 'slow_call_rate' | 'wait_elapsed' | 'probes_passed' | 'probes_failed' | 'half_open_timeout';

export interface HealthTransition {
  key: HealthKey;
  from: HealthState;
  to: HealthState;
  cause: HealthCause;
  /** when it happened (a wait that elapsed between two looks is dated when it elapsed) */
  at: number;
  rates: HealthRates;
  /** the OPEN wait that starts (to OPEN), else 0 */
  waitMs: number;
  reason: string;
}

export interface HealthBreakerView {
  key: HealthKey;
  state: HealthState;
  rates: HealthRates;
  /** when the current (or last) OPEN began; null if never opened */
  openedAt: number | null;
  /** when OPEN gives way to HALF_OPEN; null unless OPEN */
  openUntil: number | null;
  /** the last time it left OPEN; null if it never did */
  leftOpenAt: number | null;
  reopens: number;
  halfOpenCalls: number;
}

const FAILED = 1;
const SLOW = 2;

/** The last N calls, at most so old, with running sums. */
class CallWindow {
  #times: Float64Array;
  #flags: Uint8Array;
  #tenants: string[];
  #head = 0;
  #size = 0;
  calls = 0;
  failures = 0;
  slowCalls = 0;
  /** failed-or-slow calls per tenant */
  readonly #failing = new Map<string, number>();

  constructor(readonly capacity: number) {
    this.#times = new Float64Array(capacity);
    this.#flags = new Uint8Array(capacity);
    this.#tenants = new Array<string>(capacity).fill('');
  }

  get failingTenants(): number {
    return this.#failing.size;
  }

  push(at: number, flags: number, tenantId: string): void {
    if (this.#size === this.capacity) this.#dropOldest();
    const i = (this.#head + this.#size) % this.capacity;
    this.#times[i] = at;
    this.#flags[i] = flags;
    this.#tenants[i] = tenantId;
    this.#size++;
    this.calls++;
    if (flags & FAILED) this.failures++;
    if (flags & SLOW) this.slowCalls++;
    if (flags !== 0) this.#failing.set(tenantId, (this.#failing.get(tenantId) ?? 0) + 1);
  }

  /** Drops calls at or before `cutoff`. */
  expire(cutoff: number): void {
    while (this.#size > 0 && (this.#times[this.#head] as number) <= cutoff) this.#dropOldest();
  }

  clear(): void {
    this.#head = 0;
    this.#size = 0;
    this.calls = 0;
    this.failures = 0;
    this.slowCalls = 0;
    this.#failing.clear();
  }

  #dropOldest(): void {
    const i = this.#head;
    const flags = this.#flags[i] as number;
    const tenantId = this.#tenants[i] as string;
    this.calls--;
    if (flags & FAILED) this.failures--;
    if (flags & SLOW) this.slowCalls--;
    if (flags !== 0) {
      const left = (this.#failing.get(tenantId) ?? 1) - 1;
      if (left <= 0) this.#failing.delete(tenantId);
      else this.#failing.set(tenantId, left);
    }
    this.#tenants[i] = '';
    this.#head = (this.#head + 1) % this.capacity;
    this.#size--;
  }
}

export class HealthBreaker {
  #state: HealthState = 'CLOSED';
  #window: CallWindow;
  #openedAt: number | null = null;
  #waitMs = 0;
  #reopens = 0;
  #halfOpenAt = 0;
  #leftOpenAt: number | null = null;
  #half = { calls: 0, failures: 0, slowCalls: 0, tenants: new Set<string>() };
  /** last time a call was recorded (for eviction of idle breakers) */
  lastCallAt: number;

  constructor(
    readonly key: HealthKey,
    private readonly now: () => number,
    settings: ProviderHealthSettings,
  ) {
    this.#window = new CallWindow(settings.slidingWindowSize);
    this.lastCallAt = now();
  }

  /** The state as of now, counting an elapsed OPEN wait. */
  state(): HealthState {
    if (this.#state === 'OPEN' && this.#openedAt !== null && this.now() >= this.#openedAt + this.#waitMs) return 'HALF_OPEN';
    return this.#state;
  }

  /** When OPEN ends, or null when not OPEN now. */
  openUntil(): number | null {
    return this.state() === 'OPEN' && this.#openedAt !== null ? this.#openedAt + this.#waitMs : null;
  }

  /** The last time the breaker left OPEN (null if never); an elapsed wait counts as left when it elapsed. */
  leftOpenAt(): number | null {
    if (this.#state === 'OPEN' && this.#openedAt !== null && this.now() >= this.#openedAt + this.#waitMs) return this.#openedAt + this.#waitMs;
    return this.#leftOpenAt;
  }

  /** Applies the time-driven transitions due `at` (default now); appends them to `out` and returns it. */
  tick(settings: ProviderHealthSettings, out: HealthTransition[] = [], at = this.now()): HealthTransition[] {
    if (this.#state === 'OPEN' && this.#openedAt !== null && at >= this.#openedAt + this.#waitMs) {
      const elapsedAt = this.#openedAt + this.#waitMs;
      this.#leftOpenAt = elapsedAt;
      this.#halfOpenAt = elapsedAt;
      this.#half = { calls: 0, failures: 0, slowCalls: 0, tenants: new Set() };
      out.push(this.#transition('HALF_OPEN', 'wait_elapsed', elapsedAt, 0, `open for ${this.#waitMs} ms; admitting ${settings.permittedCallsHalfOpen} probe call(s)`));
    }
    if (this.#state === 'HALF_OPEN' && settings.maxWaitHalfOpenMs > 0 && at >= this.#halfOpenAt + settings.maxWaitHalfOpenMs) {
      out.push(this.#open('half_open_timeout', at, settings, true, `half-open for ${settings.maxWaitHalfOpenMs} ms without ${settings.permittedCallsHalfOpen} probe calls`));
    }
    return out;
  }

  /**
   * Records one call's outcome, as of `at` (default now); appends the transitions it (and the
   * time) caused to `out` and returns it. Called for every model span, so nothing is allocated
   * unless something changes, and the caller reads the clock once per request, not per call.
   */
  record(call: HealthCall, settings: ProviderHealthSettings, out: HealthTransition[] = [], at = this.now()): HealthTransition[] {
    if (this.#window.capacity !== settings.slidingWindowSize) this.#window = new CallWindow(settings.slidingWindowSize);
    this.tick(settings, out, at);
    this.lastCallAt = at;
    const flags = (call.failure ? FAILED : 0) | (call.slow ? SLOW : 0);
    switch (this.#state) {
      case 'CLOSED': {
        this.#window.expire(at - settings.slidingWindowMs);
        this.#window.push(at, flags, call.tenantId);
        const trip = this.#trip(this.#window, this.#window.failingTenants, settings);
        if (trip !== null) out.push(this.#open(trip, at, settings, false, this.#describe(trip, settings)));
        break;
      }
      case 'HALF_OPEN': {
        const half = this.#half;
        half.calls++;
        if (call.failure) half.failures++;
        if (call.slow) half.slowCalls++;
        if (flags !== 0) half.tenants.add(call.tenantId);
        if (half.calls >= settings.permittedCallsHalfOpen) {
          const trip = this.#trip(half, half.tenants.size, settings);
          if (trip !== null) {
            out.push(this.#open('probes_failed', at, settings, true, `${this.#describe(trip, settings, half)} while probing`));
          } else {
            const rates = this.#ratesOf(half, half.tenants.size, settings, true);
            this.#window.clear();
            this.#reopens = 0;
            out.push(this.#transition('CLOSED', 'probes_passed', at, 0, `${half.calls} probe call(s) passed`, rates));
          }
        }
        break;
      }
      case 'OPEN':
        break;
    }
    return out;
  }

  rates(settings: ProviderHealthSettings): HealthRates {
    if (this.#state === 'HALF_OPEN') return this.#ratesOf(this.#half, this.#half.tenants.size, settings, true);
    this.#window.expire(this.now() - settings.slidingWindowMs);
    return this.#ratesOf(this.#window, this.#window.failingTenants, settings, false);
  }

  view(settings: ProviderHealthSettings): HealthBreakerView {
    return {
      key: this.key,
      state: this.state(),
      rates: this.rates(settings),
      openedAt: this.#openedAt,
      openUntil: this.openUntil(),
      leftOpenAt: this.leftOpenAt(),
      reopens: this.#reopens,
      halfOpenCalls: this.#half.calls,
    };
  }

  /** CLOSED with no failed or slow call left in its window: holds nothing worth keeping. */
  isQuiet(settings: ProviderHealthSettings): boolean {
    if (this.#state !== 'CLOSED') return false;
    this.#window.expire(this.now() - settings.slidingWindowMs);
    return this.#window.failures === 0 && this.#window.slowCalls === 0;
  }

  #trip(counts: { calls: number; failures: number; slowCalls: number }, failingTenants: number, settings: ProviderHealthSettings): HealthCause | null {
    if (this.#state === 'CLOSED' && counts.calls < settings.minimumCalls) return null;
    // A shared breaker needs failures from several tenants; a tenant's own needs only its own.
    const minTenants = this.key.tenantId === '' ? settings.sharedMinTenants : 1;
    if (failingTenants < minTenants) return null;
    if (counts.calls === 0) return null;
    if (counts.failures / counts.calls >= settings.failureRateThreshold) return 'failure_rate';
    if (counts.slowCalls / counts.calls >= settings.slowCallRateThreshold) return 'slow_call_rate';
    return null;
  }

  #open(cause: HealthCause, at: number, settings: ProviderHealthSettings, reopen: boolean, reason: string): HealthTransition {
    const rates = this.#state === 'HALF_OPEN' ? this.#ratesOf(this.#half, this.#half.tenants.size, settings, true) : this.#ratesOf(this.#window, this.#window.failingTenants, settings, false);
    this.#reopens = reopen ? this.#reopens + 1 : 0;
    const base = settings.waitDurationOpenMs;
    this.#waitMs = Math.max(base, Math.min(settings.maxWaitDurationMs, Math.round(base * Math.pow(settings.waitMultiplier, this.#reopens))));
    this.#openedAt = at;
    this.#window.clear();
    return this.#transition('OPEN', cause, at, this.#waitMs, `${reason}; open for ${this.#waitMs} ms`, rates);
  }

  #transition(to: HealthState, cause: HealthCause, at: number, waitMs: number, reason: string, rates?: HealthRates): HealthTransition {
    const from = this.#state;
    this.#state = to;
    return { key: this.key, from, to, cause, at, rates: rates ?? { calls: 0, failures: 0, slowCalls: 0, failureRate: 0, slowCallRate: 0, failingTenants: 0 }, waitMs, reason };
  }

  #ratesOf(counts: { calls: number; failures: number; slowCalls: number }, failingTenants: number, settings: ProviderHealthSettings, halfOpen: boolean): HealthRates {
    const enough = counts.calls > 0 && (halfOpen || counts.calls >= settings.minimumCalls);
    return {
      calls: counts.calls,
      failures: counts.failures,
      slowCalls: counts.slowCalls,
      failureRate: enough ? counts.failures / counts.calls : 0,
      slowCallRate: enough ? counts.slowCalls / counts.calls : 0,
      failingTenants,
    };
  }

  #describe(cause: HealthCause, settings: ProviderHealthSettings, counts: { calls: number; failures: number; slowCalls: number } = this.#window): string {
    const what = this.key.scope === 'MODEL' ? `${this.key.provider}/${this.key.model}` : this.key.provider;
    if (cause === 'slow_call_rate') {
      return `${what}: ${counts.slowCalls} of ${counts.calls} calls slower than ${settings.slowCallDurationMs} ms (threshold ${pct(settings.slowCallRateThreshold)})`;
    }
    return `${what}: ${counts.failures} of ${counts.calls} calls failed with 5xx, timeouts or connection errors (threshold ${pct(settings.failureRateThreshold)})`;
  }
}

function pct(ratio: number): string {
  return `${Math.round(ratio * 1000) / 10} %`;
}
