// The SDK's own judge of its runs' cumulative thresholds: the spans this instance exports are
// recorded in the server's RunWindow through the server's span facts, and compared with the run
// thresholds the server sent by the server's threshold rule, so a run is halted at the step that
// crosses instead of one export and one decision later. The server's decision still wins.
//
// Precedence (documented in docs/sdk.md):
// - a local HALT is made only while the server's breaker for the run is CLOSED or HALF_OPEN (or
//   unknown): in those states the server trips on the same crossing, in OPEN / FORCED_OPEN it
//   already halts, and a DISABLED breaker never trips;
// - a server decision for the run that arrives after the local HALT replaces it when it is a HALT,
//   or its breaker is not CLOSED, or the export carrying the crossing span was accepted (the server
//   decides before it answers); a CLOSED ALLOW/WARN before that was issued before the server saw
//   the crossing (an operator's reset then is followed by the server's own trip on it);
// - a local HALT the server does not confirm within LOCAL_CONFIRM_MS of accepting the crossing
//   span lapses: the server's silence wins too (a threshold loosened since the SDK fetched it).
// - past the policy's cooldown a local HALT lapses, as the server's breaker turns HALF_OPEN then.

import type { AgentSpan } from '../contracts/agent-span.js';
import type { BreakerState, Decision } from '../contracts/decision.js';
import type { CachedDecision, DecisionCache } from './decision-cache.js';
import { evaluateThresholds } from '../breakers/threshold-rules.js';
import type { Thresholds } from '../policy/policy-types.js';
import { RunWindow } from '../windows/run-window.js';
import type { RunMetric } from '../windows/metric-names.js';
import { blankFacts, spanFacts } from '../windows/span-facts.js';
import { secondOf, WINDOW_SECONDS } from '../windows/window-time.js';

/**
 * Metrics the SDK sees completely for its own runs, and whose value depends only on the spans (not
 * on when they are judged): cumulative and never decreasing. Rates (velocities, per-minute counts)
 * depend on the judging clock, costUsd on prices the SDK is not sent, errorRatio on the rates.
 */
export const LOCAL_METRICS = ['stepCount', 'subAgentDepth', 'durationSeconds'] as const satisfies readonly RunMetric[];
export type LocalMetric = (typeof LOCAL_METRICS)[number];

/** How long after the server accepted the crossing span a local HALT waits for its confirmation. */
export const LOCAL_CONFIRM_MS = 5_000;

/** What the judge needs of the tenant's effective policy, as the server sent it. */
export interface LocalPolicy {
  run: Thresholds;
  warnFraction: number;
  /** the breaker's base cooldown: the retry-after of a trip */
  cooldownMs: number;
}

interface LocalHalt {
  decision: Decision;
  /** local clock when it was made */
  decidedAt: number;
  /** the span whose recording crossed */
  spanId: string;
  /** local clock when the server accepted the export carrying that span */
  acceptedAt: number | undefined;
}

export interface LocalJudgeOptions {
  tenantId: string;
  /**
   * runs kept at most; the least recently recorded go first (a run's window is kept after its root
   * agent ends, since the same run id may go on, as the server's does). Default 1 000
   */
  maxRuns?: number;
}

export class LocalJudge {
  readonly #tenantId: string;
  readonly #maxRuns: number;
  readonly #facts = blankFacts();
  #policy: LocalPolicy | undefined;
  #thresholds: Thresholds = {};
  readonly #runs = new Map<string, RunWindow>();
  /** the breaker state of the server's latest decision per run */
  readonly #serverState = new Map<string, BreakerState>();
  readonly #halts = new Map<string, LocalHalt>();

  constructor(options: LocalJudgeOptions) {
    this.#tenantId = options.tenantId;
    this.#maxRuns = Math.max(1, options.maxRuns ?? 1_000);
  }

  get policy(): LocalPolicy | undefined {
    return this.#policy;
  }

  /** The run thresholds the server sent; undefined: none known, so no local decisions. */
  setPolicy(policy: LocalPolicy | undefined): void {
    this.#policy = policy;
    const thresholds: Thresholds = {};
    for (const metric of LOCAL_METRICS) if (policy?.run[metric] !== undefined) thresholds[metric] = policy.run[metric];
    this.#thresholds = thresholds;
  }

  /**
   * Records one span of a run as the server's window does; returns the local HALT it makes, if
   * this span crosses a threshold while the server's breaker would trip on it.
   */
  record(span: AgentSpan, nowMs: number): Decision | undefined {
    const runId = span.runId;
    let run = this.#runs.get(runId);
    if (run === undefined) {
      run = new RunWindow(this.#tenantId, runId, nowMs);
      if (this.#runs.size >= this.#maxRuns) this.#forgetOldest();
    } else {
      this.#runs.delete(runId);
    }
    this.#runs.set(runId, run);
    const f = spanFacts(span, nowMs, {}, this.#facts);
    const w = Math.max(secondOf(nowMs), f.endSec);
    f.inWindow = f.endSec > w - WINDOW_SECONDS;
    run.record(f, span.spanId, span.parentSpanId, w, 1);
    run.lastSeenMs = nowMs;

    return this.#judge(run, span, nowMs);
  }

  #judge(run: RunWindow, span: AgentSpan, nowMs: number): Decision | undefined {
    const runId = span.runId;
    const policy = this.#policy;
    // A zero cooldown opens the server's breaker straight into HALF_OPEN, which allows: no HALT to make.
    if (policy === undefined || policy.cooldownMs <= 0 || this.#halts.has(runId) || !tripsOnServer(this.#serverState.get(runId))) return undefined;
    const metrics: Record<LocalMetric, number> = { stepCount: run.stepCount, subAgentDepth: run.subAgentDepth, durationSeconds: run.durationSeconds };
    const trip = evaluateThresholds(metrics, this.#thresholds, policy.warnFraction).trips[0];
    if (trip === undefined) return undefined;
    const decision: Decision = {
      tenantId: this.#tenantId,
      runId,
      scope: 'RUN',
      action: 'HALT',
      state: 'OPEN',
      reason: `${trip.metric} ${formatNumber(trip.observed)} exceeded its threshold ${formatNumber(trip.threshold)}; halted by the SDK from the run's own spans`,
      metric: trip.metric,
      threshold: trip.threshold,
      observed: trip.observed,
      retryAfterMs: Math.max(0, policy.cooldownMs),
      sequence: 0,
      issuedAt: new Date(nowMs).toISOString(),
      source: 'local',
    };
    this.#halts.set(runId, { decision, decidedAt: nowMs, spanId: span.spanId, acceptedAt: undefined });
    if (this.#halts.size > this.#maxRuns) this.#halts.delete(this.#halts.keys().next().value as string);
    return decision;
  }

  /** The server accepted an export: a local HALT whose crossing span it carried is now the server's to confirm. */
  accepted(spans: readonly { runId: string; spanId: string }[], nowMs: number): void {
    if (this.#halts.size === 0) return;
    for (const { runId, spanId } of spans) {
      const halt = this.#halts.get(runId);
      if (halt !== undefined && halt.spanId === spanId && halt.acceptedAt === undefined) halt.acceptedAt = nowMs;
    }
  }

  /** A decision from the server: notes its breaker state, and replaces a local HALT as the precedence says. */
  serverDecision(decision: Decision): void {
    const runId = decision.runId;
    if (runId === undefined) return;
    this.#serverState.delete(runId);
    this.#serverState.set(runId, decision.state);
    if (this.#serverState.size > this.#maxRuns) this.#serverState.delete(this.#serverState.keys().next().value as string);
    const halt = this.#halts.get(runId);
    if (halt === undefined) return;
    if (decision.action === 'HALT' || decision.state !== 'CLOSED' || halt.acceptedAt !== undefined) this.#halts.delete(runId);
  }

  /**
   * The run's local HALT in force, if any. `confirming`: the server can confirm now (the
   * subscription is up), so an unconfirmed HALT past LOCAL_CONFIRM_MS lapses.
   */
  decision(runId: string, nowMs: number, confirming: boolean): Decision | undefined {
    const halt = this.#halts.get(runId);
    if (halt === undefined) return undefined;
    // Past its cooldown the server's breaker is HALF_OPEN and allows probes: so does the local HALT.
    const cooledDown = nowMs >= halt.decidedAt + halt.decision.retryAfterMs;
    if (cooledDown || (confirming && halt.acceptedAt !== undefined && nowMs - halt.acceptedAt > LOCAL_CONFIRM_MS)) {
      this.#halts.delete(runId);
      return undefined;
    }
    return halt.decision;
  }

  /** true while a local HALT waits for the server to accept its crossing span */
  get pending(): boolean {
    for (const halt of this.#halts.values()) if (halt.acceptedAt === undefined) return true;
    return false;
  }

  /** Runs held (bounded by maxRuns). */
  get runCount(): number {
    return this.#runs.size;
  }

  #forgetOldest(): void {
    const oldest = this.#runs.keys().next();
    if (oldest.done) return;
    this.#runs.delete(oldest.value);
    this.#halts.delete(oldest.value);
  }
}

/**
 * What checkpoint() weighs for a run: its local HALT in place of its cached server decision (a
 * server decision that should replace the local one has already cleared it), then the tenant-wide
 * one. `stale`: the subscription is down past its grace, so decisions whose retry-after ran out lapse.
 */
export function applicableDecisions(
  cache: DecisionCache,
  judge: LocalJudge | undefined,
  runId: string | undefined,
  now: number,
  link: { connected: boolean; stale: boolean },
): CachedDecision[] {
  const expiredBefore = link.stale ? now : undefined;
  const local = runId === undefined ? undefined : judge?.decision(runId, now, link.connected);
  if (local === undefined) return cache.applicable(runId, expiredBefore);
  const entry: CachedDecision = { decision: local, receivedAt: Date.parse(local.issuedAt), generation: cache.generation };
  return [entry, ...cache.applicable(undefined, expiredBefore)];
}

/** Breaker states in which the server trips on a crossing (unknown: no breaker yet, i.e. CLOSED). */
function tripsOnServer(state: BreakerState | undefined): boolean {
  return state === undefined || state === 'CLOSED' || state === 'HALF_OPEN';
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(3)));
}
