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
// ignored: they were in flight when the breaker opened. So are calls that started before probing
// began, before the probes closed it, or before forget(): a recovery starts from a clean slate, not
// on the storm's stragglers.
//
// A shared breaker (tenantId '', fed by every tenant) opens only when at least `sharedMinTenants`
// tenants are over its thresholds on their own calls in the window (each with at least its share of
// the minimum calls, tenant-tallies.ts): one tenant's spans, plus a stray failure from another, open
// only that tenant's own breakers. Its transitions name tenant counts only, never call counts, since
// they are recorded in every concerned tenant's log.

import type { ProviderHealthSettings } from './degradation-schema.js';
import { tenantShare, TenantTallies, type TallyRule } from './tenant-tallies.js';

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
  /** when the call started (epoch ms); a call older than the breaker's evidence is ignored */
  startedAt?: number;
}

export interface HealthRates {
  calls: number;
  failures: number;
  slowCalls: number;
  /** 0 below minimumCalls */
  failureRate: number;
  slowCallRate: number;
  /** tenants over the thresholds on their own calls in the window (each with its share of the minimum calls) */
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
  /** tenants over the thresholds when it last opened (what a shared breaker may tell each tenant) */
  trippedBy: number;
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
  /** the calls of each tenant in the window */
  readonly tallies: TenantTallies;

  constructor(
    readonly capacity: number,
    rule: TallyRule,
  ) {
    this.#times = new Float64Array(capacity);
    this.#flags = new Uint8Array(capacity);
    this.#tenants = new Array<string>(capacity).fill('');
    this.tallies = new TenantTallies(rule);
  }

  get failingTenants(): number {
    return this.tallies.over;
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
    this.tallies.add(tenantId, (flags & FAILED) !== 0, (flags & SLOW) !== 0);
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
    this.tallies.clear();
  }

  #dropOldest(): void {
    const i = this.#head;
    const flags = this.#flags[i] as number;
    const tenantId = this.#tenants[i] as string;
    this.calls--;
    if (flags & FAILED) this.failures--;
    if (flags & SLOW) this.slowCalls--;
    this.tallies.remove(tenantId, (flags & FAILED) !== 0, (flags & SLOW) !== 0);
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
  #trippedBy = 0;
  /** calls that started before this are old evidence: set when probing begins, and by forget() */
  #countsFrom = -Infinity;
  #half: HalfOpenCounts;
  /** last time a call was recorded (for eviction of idle breakers) */
  lastCallAt: number;

  constructor(
    readonly key: HealthKey,
    private readonly now: () => number,
    settings: ProviderHealthSettings,
  ) {
    this.#window = new CallWindow(settings.slidingWindowSize, windowRule(settings));
    this.#half = halfOpenCounts(settings);
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
      this.#countsFrom = Math.max(this.#countsFrom, elapsedAt);
      this.#half = halfOpenCounts(settings);
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
    if (this.#window.capacity !== settings.slidingWindowSize) this.#window = new CallWindow(settings.slidingWindowSize, windowRule(settings));
    else this.#window.tallies.setRule(tenantShare(settings.minimumCalls, settings.sharedMinTenants), settings.failureRateThreshold, settings.slowCallRateThreshold);
    this.tick(settings, out, at);
    this.lastCallAt = at;
    if (call.startedAt !== undefined && call.startedAt < this.#countsFrom) return out;
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
        half.tallies.add(call.tenantId, call.failure, call.slow);
        if (half.calls >= settings.permittedCallsHalfOpen) {
          const trip = this.#trip(half, half.tallies.over, settings);
          if (trip !== null) {
            out.push(this.#open('probes_failed', at, settings, true, `${this.#describe(trip, settings, half)} while probing`));
          } else {
            const rates = this.#ratesOf(half, half.tallies.over, settings, true);
            this.#window.clear();
            this.#reopens = 0;
            // Calls still in flight began before the probes proved the recovery (gobreaker's generations).
            this.#countsFrom = Math.max(this.#countsFrom, at);
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

  /** When the evidence the breaker counts begins (-Infinity: all of it). */
  get countsFrom(): number {
    return this.#countsFrom;
  }

  /**
   * Drops the calls recorded up to `before` (and half-open counts) and ignores calls started before
   * it: a recovery proven elsewhere (a shared breaker's probes, the tenant's promotion) is not undone by
   * failures from the incident it ended.
   */
  forget(before: number, settings: ProviderHealthSettings): void {
    if (before <= this.#countsFrom) return;
    this.#countsFrom = before;
    if (this.#state === 'CLOSED') this.#window.expire(before);
    else if (this.#state === 'HALF_OPEN') this.#half = halfOpenCounts(settings);
  }

  rates(settings: ProviderHealthSettings): HealthRates {
    if (this.#state === 'HALF_OPEN') return this.#ratesOf(this.#half, this.#half.tallies.over, settings, true);
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
      trippedBy: this.#trippedBy,
    };
  }

  /**
   * CLOSED with no failed or slow call left in its window, and no recent clean slate to remember (a
   * breaker made afresh would count the stragglers its recovery ignores): holds nothing worth keeping.
   */
  isQuiet(settings: ProviderHealthSettings): boolean {
    const at = this.now();
    if (this.#state !== 'CLOSED' || at - this.#countsFrom < settings.slidingWindowMs) return false;
    this.#window.expire(at - settings.slidingWindowMs);
    return this.#window.failures === 0 && this.#window.slowCalls === 0;
  }

  #trip(counts: { calls: number; failures: number; slowCalls: number }, failingTenants: number, settings: ProviderHealthSettings): HealthCause | null {
    if (this.#state === 'CLOSED' && counts.calls < settings.minimumCalls) return null;
    // A shared breaker needs several tenants over the thresholds on their own calls; a tenant's own breaker, its calls.
    if (this.key.tenantId === '' && failingTenants < settings.sharedMinTenants) return null;
    if (counts.calls === 0) return null;
    if (counts.failures / counts.calls >= settings.failureRateThreshold) return 'failure_rate';
    if (counts.slowCalls / counts.calls >= settings.slowCallRateThreshold) return 'slow_call_rate';
    return null;
  }

  #open(cause: HealthCause, at: number, settings: ProviderHealthSettings, reopen: boolean, reason: string): HealthTransition {
    const rates = this.#state === 'HALF_OPEN' ? this.#ratesOf(this.#half, this.#half.tallies.over, settings, true) : this.#ratesOf(this.#window, this.#window.failingTenants, settings, false);
    this.#reopens = reopen ? this.#reopens + 1 : 0;
    const base = settings.waitDurationOpenMs;
    this.#waitMs = Math.max(base, Math.min(settings.maxWaitDurationMs, Math.round(base * Math.pow(settings.waitMultiplier, this.#reopens))));
    this.#openedAt = at;
    this.#trippedBy = rates.failingTenants;
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

  #describe(cause: HealthCause, settings: ProviderHealthSettings, counts: { calls: number; failures: number; slowCalls: number; tallies: TenantTallies } = this.#window): string {
    const what = this.key.scope === 'MODEL' ? `${this.key.provider}/${this.key.model}` : this.key.provider;
    if (this.key.tenantId === '') {
      const threshold = cause === 'slow_call_rate' ? `slow-call rate threshold (${pct(settings.slowCallRateThreshold)}, slower than ${settings.slowCallDurationMs} ms)` : `failure rate threshold (${pct(settings.failureRateThreshold)})`;
      return `${what}: ${counts.tallies.over} tenants over the ${threshold} on their own calls`;
    }
    if (cause === 'slow_call_rate') {
      return `${what}: ${counts.slowCalls} of ${counts.calls} calls slower than ${settings.slowCallDurationMs} ms (threshold ${pct(settings.slowCallRateThreshold)})`;
    }
    return `${what}: ${counts.failures} of ${counts.calls} calls failed with 5xx, timeouts or connection errors (threshold ${pct(settings.failureRateThreshold)})`;
  }
}

interface HalfOpenCounts {
  calls: number;
  failures: number;
  slowCalls: number;
  tallies: TenantTallies;
}

function halfOpenCounts(settings: ProviderHealthSettings): HalfOpenCounts {
  return { calls: 0, failures: 0, slowCalls: 0, tallies: new TenantTallies(rule(settings, settings.permittedCallsHalfOpen)) };
}

function windowRule(settings: ProviderHealthSettings): TallyRule {
  return rule(settings, settings.minimumCalls);
}

function rule(settings: ProviderHealthSettings, windowMinimum: number): TallyRule {
  return {
    minCalls: tenantShare(windowMinimum, settings.sharedMinTenants),
    failureRateThreshold: settings.failureRateThreshold,
    slowCallRateThreshold: settings.slowCallRateThreshold,
  };
}

function pct(ratio: number): string {
  return `${Math.round(ratio * 1000) / 10} %`;
}
