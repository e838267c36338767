import type { BreakerSettings } from '../policy/policy-types.js';
import { closedSnapshot, type BreakerKey, type BreakerSnapshot } from './breaker-snapshot.js';
import type { BreakerState, DecisionDraft } from '../contracts/decision.js';
import type { Crossing, ThresholdEvaluation } from './threshold-rules.js';

/** The actor recorded for transitions Breakwater makes by itself. */
export const SYSTEM_ACTOR = 'breakwater';

export type TransitionCause =
  | 'trip'
  | 'cooldown_elapsed'
  | 'probe_failed'
  | 'probes_passed'
  | 'forced_open'
  | 'force_expired'
  | 'reset'
  | 'disabled';

/** A change of a breaker, as the audit log and the breaker-event stream record it. */
export interface BreakerTransition {
  key: BreakerKey;
  from: BreakerState;
  to: BreakerState;
  cause: TransitionCause;
  /** ms since the epoch */
  at: number;
  /** the crossing that caused it (trips and failed probes) */
  crossing: Crossing | null;
  reason: string;
  /** SYSTEM_ACTOR, or the operator who acted */
  actor: string;
  /** the breaker after the transition, so a restarted process can resume from the audit log */
  snapshot: BreakerSnapshot;
}

/**
 * The breaker of one scope (a tenant, or one run of a tenant):
 *
 *   CLOSED ──trip──▶ OPEN ──cooldown elapsed──▶ HALF_OPEN ──probeSteps steps, no trip──▶ CLOSED
 *                     ▲                            │
 *                     └──── trip (cooldown × multiplier, capped) ◀┘
 *
 * plus the operator states FORCED_OPEN (HALT until reset or until a given time) and DISABLED
 * (never trips until reset). Time only moves through the injected clock, and time-driven changes
 * (cooldown elapsed, forced-open expiry) are applied lazily: `decision()` reports them at once
 * without mutating, `evaluate()` and `tick()` apply them and return the transitions for the audit
 * log. The owner can call `tick()` at `nextDeadline()` to push the change without waiting for spans.
 */
export class CircuitBreaker {
  #s: BreakerSnapshot;
  /** the top warning of the latest evaluation while CLOSED; transient, rebuilt by the next one */
  #warning: Crossing | null = null;

  constructor(
    readonly key: BreakerKey,
    private readonly now: () => number,
    snapshot: BreakerSnapshot = closedSnapshot(),
  ) {
    this.#s = { ...snapshot, lastCrossing: snapshot.lastCrossing && { ...snapshot.lastCrossing } };
  }

  /** A breaker resumed from `snapshot()` (e.g. read back from the audit log after a restart). */
  static restore(key: BreakerKey, snapshot: BreakerSnapshot, now: () => number): CircuitBreaker {
    return new CircuitBreaker(key, now, snapshot);
  }

  /** The stored state, before time-driven changes; see `currentState()`. */
  get state(): BreakerState {
    return this.#s.state;
  }

  /** The state as of now, counting an elapsed cooldown or an expired forced-open. */
  currentState(): BreakerState {
    return this.#viewAt(this.now());
  }

  snapshot(): BreakerSnapshot {
    return { ...this.#s, lastCrossing: this.#s.lastCrossing && { ...this.#s.lastCrossing } };
  }

  /** When a time-driven transition is due (ms since the epoch), or null when none is pending. */
  nextDeadline(): number | null {
    const s = this.#s;
    if (s.state === 'OPEN' && s.openedAt !== null) return s.openedAt + s.cooldownMs;
    if (s.state === 'FORCED_OPEN') return s.forcedUntil;
    return null;
  }

  /** Applies the time-driven transitions that are due. */
  tick(settings: BreakerSettings): BreakerTransition[] {
    const at = this.now();
    const s = this.#s;
    if (s.state === 'OPEN' && s.openedAt !== null && at >= s.openedAt + s.cooldownMs) {
      const probes = probeSteps(settings);
      return [
        this.#move('HALF_OPEN', 'cooldown_elapsed', at, {
          probesLeft: probes,
          reason: `cooldown of ${s.cooldownMs} ms elapsed; admitting ${probes} probe step${probes === 1 ? '' : 's'}`,
        }),
      ];
    }
    if (s.state === 'FORCED_OPEN' && s.forcedUntil !== null && at >= s.forcedUntil) {
      return [
        this.#move('CLOSED', 'force_expired', at, {
          ...closedSnapshot(),
          reason: `forced open until ${new Date(s.forcedUntil).toISOString()}; expired`,
        }),
      ];
    }
    return [];
  }

  /**
   * Feeds the threshold evaluation made after new spans for this scope were recorded. `steps` is
   * how many agent steps those spans hold; while HALF_OPEN they are the probes.
   */
  evaluate(evaluation: ThresholdEvaluation, settings: BreakerSettings, steps = 1): BreakerTransition[] {
    const transitions = this.tick(settings);
    const at = this.now();
    const trip = evaluation.trips[0] ?? null;
    const s = this.#s;
    switch (s.state) {
      case 'CLOSED':
        this.#warning = evaluation.warnings[0] ?? null;
        if (trip) {
          this.#warning = null;
          const cooldownMs = Math.max(0, settings.cooldownMs);
          transitions.push(
            this.#move('OPEN', 'trip', at, {
              openedAt: at,
              cooldownMs,
              reopenCount: 0,
              probesLeft: 0,
              lastCrossing: trip,
              reason: `${describe(trip)}; halted for ${cooldownMs} ms`,
            }),
          );
        }
        break;
      case 'HALF_OPEN':
        if (trip) {
          const reopenCount = s.reopenCount + 1;
          const cooldownMs = grownCooldown(settings, reopenCount);
          transitions.push(
            this.#move('OPEN', 'probe_failed', at, {
              openedAt: at,
              cooldownMs,
              reopenCount,
              probesLeft: 0,
              lastCrossing: trip,
              reason: `${describe(trip)} again while probing; halted for ${cooldownMs} ms (re-open ${reopenCount})`,
            }),
          );
        } else {
          const probesLeft = Math.max(0, s.probesLeft - Math.max(0, steps));
          if (probesLeft === 0) {
            this.#warning = evaluation.warnings[0] ?? null;
            transitions.push(
              this.#move('CLOSED', 'probes_passed', at, { ...closedSnapshot(), reason: 'probe steps passed without a trip' }),
            );
          } else {
            this.#s = { ...s, probesLeft };
          }
        }
        break;
      // OPEN: the agent was told to halt; spans still arriving do not restart the cooldown, or a
      // slow-to-stop agent would extend its own penalty. FORCED_OPEN and DISABLED ignore metrics.
      case 'OPEN':
      case 'FORCED_OPEN':
      case 'DISABLED':
        break;
    }
    return transitions;
  }

  /** Operator: HALT this scope until `untilMs` (ms since the epoch) or, without it, until reset. */
  forceOpen(reason: string, actor: string, untilMs?: number): BreakerTransition {
    const at = this.now();
    if (untilMs !== undefined && (!Number.isFinite(untilMs) || untilMs <= at)) {
      throw new RangeError(`forceOpen: untilMs must be a time in the future, got ${untilMs}`);
    }
    return this.#move(
      'FORCED_OPEN',
      'forced_open',
      at,
      { ...closedSnapshot(), state: 'FORCED_OPEN', forcedUntil: untilMs ?? null, forcedBy: actor, reason: reason || `forced open by ${actor}` },
      actor,
    );
  }

  /** Operator: back to CLOSED with the base cooldown, whatever the state. */
  reset(actor: string, reason?: string): BreakerTransition {
    this.#warning = null;
    return this.#move('CLOSED', 'reset', this.now(), { ...closedSnapshot(), reason: reason || `reset by ${actor}` }, actor);
  }

  /** Operator: never trip (always ALLOW) until reset. */
  disable(actor: string, reason?: string): BreakerTransition {
    this.#warning = null;
    return this.#move(
      'DISABLED',
      'disabled',
      this.now(),
      { ...closedSnapshot(), reason: reason || `disabled by ${actor}` },
      actor,
    );
  }

  /** What the agent should do now; the decision bus stamps sequence and issuedAt. */
  decision(): DecisionDraft {
    const at = this.now();
    const s = this.#s;
    const state = this.#viewAt(at);
    const base = {
      tenantId: this.key.tenantId,
      ...(this.key.runId === undefined ? {} : { runId: this.key.runId }),
      scope: this.key.scope,
      state,
    };
    const crossing = s.lastCrossing ?? { metric: '', threshold: 0, observed: 0 };
    switch (state) {
      case 'CLOSED': {
        // A stored OPEN/FORCED_OPEN seen as CLOSED here means it expired; its warning is gone too.
        const warning = s.state === 'CLOSED' ? this.#warning : null;
        if (warning) return { ...base, action: 'WARN', reason: describeWarning(warning), ...warning, retryAfterMs: 0 };
        return { ...base, action: 'ALLOW', reason: '', metric: '', threshold: 0, observed: 0, retryAfterMs: 0 };
      }
      case 'OPEN':
        return {
          ...base,
          action: 'HALT',
          reason: s.reason,
          ...crossing,
          retryAfterMs: Math.max(0, (s.openedAt ?? at) + s.cooldownMs - at),
        };
      case 'HALF_OPEN':
        return {
          ...base,
          action: 'ALLOW',
          reason: `probing after ${crossing.metric || 'a trip'}: the breaker closes when the next steps pass`,
          ...crossing,
          retryAfterMs: 0,
        };
      case 'FORCED_OPEN':
        return {
          ...base,
          action: 'HALT',
          reason: s.reason,
          metric: '',
          threshold: 0,
          observed: 0,
          // 0 = no estimate: the halt lasts until an operator resets the breaker.
          retryAfterMs: s.forcedUntil === null ? 0 : Math.max(0, s.forcedUntil - at),
        };
      case 'DISABLED':
        return { ...base, action: 'ALLOW', reason: s.reason, metric: '', threshold: 0, observed: 0, retryAfterMs: 0 };
    }
  }

  #viewAt(at: number): BreakerState {
    const s = this.#s;
    if (s.state === 'OPEN' && s.openedAt !== null && at >= s.openedAt + s.cooldownMs) return 'HALF_OPEN';
    if (s.state === 'FORCED_OPEN' && s.forcedUntil !== null && at >= s.forcedUntil) return 'CLOSED';
    return s.state;
  }

  #move(
    to: BreakerState,
    cause: TransitionCause,
    at: number,
    changes: Partial<BreakerSnapshot>,
    actor = SYSTEM_ACTOR,
  ): BreakerTransition {
    const from = this.#s.state;
    this.#s = { ...this.#s, ...changes, state: to };
    const crossing = cause === 'trip' || cause === 'probe_failed' ? this.#s.lastCrossing : null;
    return { key: this.key, from, to, cause, at, crossing, reason: this.#s.reason, actor, snapshot: this.snapshot() };
  }
}

/** Cooldown after the n-th consecutive re-open: base × multiplier^n, capped, never below base. */
export function grownCooldown(settings: BreakerSettings, reopenCount: number): number {
  const base = Math.max(0, settings.cooldownMs);
  const grown = base * Math.pow(Math.max(1, settings.cooldownMultiplier), reopenCount);
  return Math.max(base, Math.min(grown, settings.maxCooldownMs));
}

function probeSteps(settings: BreakerSettings): number {
  // At least one: a HALF_OPEN that admits nothing could never close.
  return Math.max(1, Math.floor(settings.probeSteps));
}

function describe(c: Crossing): string {
  return `${c.metric} ${formatNumber(c.observed)} exceeded its threshold ${formatNumber(c.threshold)}`;
}

function describeWarning(c: Crossing): string {
  return `${c.metric} ${formatNumber(c.observed)} is near its threshold ${formatNumber(c.threshold)}`;
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(3)));
}
