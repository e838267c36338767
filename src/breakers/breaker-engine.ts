import type { AgentSpan } from '../contracts/agent-span.js';
import type { SpanObserver } from '../app/pipeline.js';
import type { Logger } from '../app/log.js';
import type { RefusalLog } from '../app/refusal-log.js';
import type { PolicyStore } from '../policy/policy-store.js';
import type { EffectivePolicy } from '../policy/policy-types.js';
import { spanSteps } from '../windows/span-facts.js';
import type { WindowStore } from '../windows/window-store.js';
import type { AnomalyDetector } from './anomaly.js';
import type { AuditEvent, AuditEventInput } from '../audit/audit-event.js';
import type { AuditLog } from '../audit/audit-log.js';
import { breakerKeyId, type BreakerKey } from './breaker-snapshot.js';
import { CircuitBreaker, type BreakerTransition } from './circuit-breaker.js';
import type { Decision } from '../contracts/decision.js';
import type { DecisionBus } from '../decisions/decision-bus.js';
import { evaluateThresholds, type ThresholdEvaluation } from './threshold-rules.js';
import { breakerTransitionEvent } from './transition-events.js';

export interface BreakerEngineOptions {
  windows: WindowStore;
  policy: PolicyStore;
  bus: DecisionBus;
  audit: AuditLog;
  anomaly: AnomalyDetector;
  log: Logger;
  now: () => number;
  /** called with seconds from request receipt to decisions published, once per observed batch */
  onDecisionLatency?: (seconds: number) => void;
  /** trips of one tenant within an hour that escalate to a human */
  escalateAfterTrips?: number;
  /**
   * Run breakers an operator may create for one tenant (breakers the rules create are bounded by
   * the runs the windows hold). Default 10 000
   */
  maxRunBreakersPerTenant?: number;
  /** counts and logs the operator actions refused for that bound */
  refusals?: Pick<RefusalLog, 'refused'>;
}

/** An operator action would create a run breaker past its tenant's bound: nothing was changed. */
export class BreakerLimitError extends Error {
  override name = 'BreakerLimitError';
}

export interface BreakerView {
  scope: 'TENANT' | 'RUN';
  runId?: string;
  state: Decision['state'];
  decision: Decision;
  /** who forced a FORCED_OPEN breaker open */
  forcedBy?: string;
}

const HOUR_MS = 3_600_000;

/**
 * The decision path: each accepted batch is recorded in the windows, then the breakers of every
 * touched tenant and run are evaluated against the tenant's policy and their decisions published,
 * all before the batch is stored (this runs synchronously inside the request). Transitions go to the
 * audit log without being waited on. Only breakers with something to say exist: a run whose metrics
 * are clean has no breaker object, so thousands of healthy runs cost nothing here.
 */
export class BreakerEngine implements SpanObserver {
  readonly #breakers = new Map<string, CircuitBreaker>();
  /** recent trip times per tenant, for escalation */
  readonly #trips = new Map<string, number[]>();
  readonly #escalated = new Set<string>();
  /** run breakers held per tenant: what maxRunBreakersPerTenant bounds */
  readonly #runBreakers = new Map<string, number>();
  #ticker: NodeJS.Timeout | undefined;

  constructor(private readonly o: BreakerEngineOptions) {}

  observe(spans: readonly AgentSpan[], receivedAt: number): void {
    const touched = new Map<string, Map<string, number>>();
    this.o.windows.recordAll(spans);
    for (const span of spans) {
      let runs = touched.get(span.tenantId);
      if (!runs) touched.set(span.tenantId, (runs = new Map()));
      runs.set(span.runId, (runs.get(span.runId) ?? 0) + spanSteps(span));
    }
    for (const [tenantId, runs] of touched) this.#evaluateTenant(tenantId, runs);
    this.o.onDecisionLatency?.((performance.now() - receivedAt) / 1000);
  }

  #evaluateTenant(tenantId: string, runs: Map<string, number>): void {
    const policy = this.o.policy.forTenant(tenantId);
    const tenantMetrics = this.o.windows.tenantMetrics(tenantId);
    if (tenantMetrics) {
      const evaluation = evaluateThresholds(tenantMetrics, policy.tenant, policy.warnFraction);
      const anomalies = this.o.anomaly.check(tenantId, tenantMetrics);
      const withAnomalies = anomalies.length === 0 ? evaluation : { trips: evaluation.trips, warnings: [...evaluation.warnings, ...anomalies] };
      let steps = 0;
      for (const n of runs.values()) steps += n;
      this.#evaluate({ tenantId, scope: 'TENANT' }, withAnomalies, policy, steps);
    }
    for (const [runId, steps] of runs) {
      const metrics = this.o.windows.runMetrics(tenantId, runId);
      if (!metrics) continue;
      this.#evaluate({ tenantId, scope: 'RUN', runId }, evaluateThresholds(metrics, policy.run, policy.warnFraction), policy, steps);
    }
  }

  #evaluate(key: BreakerKey, evaluation: ThresholdEvaluation, policy: EffectivePolicy, steps: number): void {
    const id = breakerKeyId(key);
    let breaker = this.#breakers.get(id);
    const quiet = evaluation.trips.length === 0 && evaluation.warnings.length === 0;
    if (!breaker) {
      if (quiet) return;
      breaker = new CircuitBreaker(key, this.o.now);
      this.#hold(id, breaker);
    }
    const transitions = breaker.evaluate(evaluation, policy.breaker, steps);
    this.#publish(breaker, transitions);
    // A closed breaker with nothing to warn about holds no information: drop it (its ALLOW was published).
    if (quiet && breaker.state === 'CLOSED') this.#drop(id);
  }

  #publish(breaker: CircuitBreaker, transitions: BreakerTransition[]): Decision {
    const decision = this.o.bus.publish(breaker.decision());
    for (const transition of transitions) this.#record(transition, decision);
    return decision;
  }

  /**
   * Audits a transition. The event is chained and in the write-ahead log before the decision path
   * goes on; ClickHouse gets it in the audit log's next batch.
   */
  #record(transition: BreakerTransition, decision: Decision): void {
    if (transition.to === 'OPEN') this.#noteTrip(transition.key.tenantId, transition.at);
    this.#audit(breakerTransitionEvent(transition, decision), 'could not record a breaker transition in the audit log');
  }

  #audit(input: AuditEventInput, failure: string): void {
    try {
      this.o.audit.record(input, (event) => this.o.bus.publishBreakerEvent(event));
    } catch (err) {
      this.o.log.error({ error: (err as Error).message, tenantId: input.tenantId }, failure);
    }
  }

  #noteTrip(tenantId: string, at: number): void {
    const recent = (this.#trips.get(tenantId) ?? []).filter((t) => at - t < HOUR_MS);
    recent.push(at);
    this.#trips.set(tenantId, recent);
    const limit = this.o.escalateAfterTrips ?? 3;
    if (recent.length >= limit && !this.#escalated.has(tenantId)) {
      this.#escalated.add(tenantId);
      this.#audit(
        { tenantId, kind: 'escalation', actor: 'breakwater', reason: `${recent.length} trips within an hour: needs a human`, observed: recent.length, threshold: limit },
        'could not record an escalation',
      );
    }
  }

  /** Tenants whose repeated trips escalated and no one has acknowledged yet. */
  isEscalated(tenantId: string): boolean {
    return this.#escalated.has(tenantId);
  }

  async acknowledgeEscalation(tenantId: string, actor: string, note: string): Promise<AuditEvent> {
    const event = await this.o.audit.append({ tenantId, kind: 'escalation_ack', actor, reason: note });
    this.#escalated.delete(tenantId);
    this.#trips.delete(tenantId);
    this.o.bus.publishBreakerEvent(event);
    return event;
  }

  /** Trips of a tenant in the last `minutes` (from memory: the last hour at most). */
  recentTrips(tenantId: string, minutes: number): number {
    const since = this.o.now() - minutes * 60_000;
    return (this.#trips.get(tenantId) ?? []).filter((t) => t >= since).length;
  }

  breakers(tenantId: string): BreakerView[] {
    const views: BreakerView[] = [];
    for (const breaker of this.#breakers.values()) {
      if (breaker.key.tenantId !== tenantId) continue;
      views.push(this.#view(breaker));
    }
    return views;
  }

  breaker(tenantId: string, runId?: string): BreakerView {
    const key = breakerKey(tenantId, runId);
    const breaker = this.#breakers.get(breakerKeyId(key));
    if (breaker) return this.#view(breaker);
    return { scope: key.scope as 'TENANT' | 'RUN', ...(runId ? { runId } : {}), state: 'CLOSED', decision: this.o.bus.latest(tenantId, runId) };
  }

  #view(breaker: CircuitBreaker): BreakerView {
    const { key } = breaker;
    const state = breaker.currentState();
    const forcedBy = state === 'FORCED_OPEN' ? breaker.snapshot().forcedBy : null;
    return {
      scope: key.scope as 'TENANT' | 'RUN',
      ...(key.runId ? { runId: key.runId } : {}),
      state,
      decision: this.o.bus.latest(key.tenantId, key.runId),
      ...(forcedBy ? { forcedBy } : {}),
    };
  }

  /** Operator actions: applied, audited (and awaited: the operator is told only once it is recorded), published. */
  async forceOpen(tenantId: string, runId: string | undefined, reason: string, actor: string, durationMs?: number): Promise<BreakerView> {
    const breaker = this.#ensure(tenantId, runId);
    const until = durationMs === undefined ? undefined : this.o.now() + durationMs;
    return this.#operate(breaker, breaker.forceOpen(reason, actor, until));
  }

  async reset(tenantId: string, runId: string | undefined, actor: string): Promise<BreakerView> {
    const breaker = this.#ensure(tenantId, runId);
    return this.#operate(breaker, breaker.reset(actor));
  }

  async disable(tenantId: string, runId: string | undefined, reason: string, actor: string): Promise<BreakerView> {
    const breaker = this.#ensure(tenantId, runId);
    return this.#operate(breaker, breaker.disable(actor, reason));
  }

  async #operate(breaker: CircuitBreaker, transition: BreakerTransition): Promise<BreakerView> {
    const decision = this.o.bus.publish(breaker.decision());
    const event = await this.o.audit.append(breakerTransitionEvent(transition, decision));
    this.o.bus.publishBreakerEvent(event);
    return this.#view(breaker);
  }

  #ensure(tenantId: string, runId: string | undefined): CircuitBreaker {
    const key = breakerKey(tenantId, runId);
    const id = breakerKeyId(key);
    let breaker = this.#breakers.get(id);
    if (breaker) return breaker;
    const limit = this.o.maxRunBreakersPerTenant ?? 10_000;
    if (key.scope === 'RUN' && (this.#runBreakers.get(tenantId) ?? 0) >= limit) {
      this.o.refusals?.refused(tenantId, 'run_breakers', { actions: 1 }, { limit });
      throw new BreakerLimitError(`tenant ${JSON.stringify(tenantId)} holds ${limit} run breakers, as many as it may; reset or wait for some to close first`);
    }
    this.#hold(id, (breaker = new CircuitBreaker(key, this.o.now)));
    return breaker;
  }

  #hold(id: string, breaker: CircuitBreaker): void {
    if (this.#breakers.has(id)) return;
    this.#breakers.set(id, breaker);
    const { tenantId, scope } = breaker.key;
    if (scope === 'RUN') this.#runBreakers.set(tenantId, (this.#runBreakers.get(tenantId) ?? 0) + 1);
  }

  #drop(id: string): void {
    const breaker = this.#breakers.get(id);
    if (breaker === undefined) return;
    this.#breakers.delete(id);
    const { tenantId, scope } = breaker.key;
    if (scope !== 'RUN') return;
    const left = (this.#runBreakers.get(tenantId) ?? 0) - 1;
    if (left > 0) this.#runBreakers.set(tenantId, left);
    else this.#runBreakers.delete(tenantId);
  }

  /** Restores breakers that were not CLOSED when the last process stopped; OPEN stays OPEN. */
  async restore(): Promise<number> {
    const restored = await this.o.audit.restoreBreakers();
    for (const { key, snapshot } of restored) {
      if (key.scope !== 'TENANT' && key.scope !== 'RUN') continue;
      const breaker = CircuitBreaker.restore(key, snapshot, this.o.now);
      this.#drop(breakerKeyId(key));
      this.#hold(breakerKeyId(key), breaker);
      this.o.bus.publish(breaker.decision());
    }
    // Trips of the last hour and open escalations carry on: a restart does not reset escalation.
    const history = await this.o.audit.tripHistory(this.o.now() - HOUR_MS);
    for (const [tenantId, times] of history.trips) this.#trips.set(tenantId, times);
    for (const tenantId of history.escalated) this.#escalated.add(tenantId);
    return restored.length;
  }

  /** Pushes time-driven transitions (cooldown over, forced-open expired) without waiting for spans. */
  tick(): void {
    const now = this.o.now();
    for (const breaker of this.#breakers.values()) {
      const deadline = breaker.nextDeadline();
      if (deadline === null || deadline > now) continue;
      // One breaker that fails (a bad policy, say) must not keep the others past their deadlines.
      try {
        const transitions = breaker.tick(this.o.policy.forTenant(breaker.key.tenantId).breaker);
        if (transitions.length > 0) this.#publish(breaker, transitions);
      } catch (err) {
        this.o.log.error({ error: (err as Error).message, tenantId: breaker.key.tenantId, runId: breaker.key.runId }, 'breaker tick failed');
      }
    }
  }

  /** The run's breaker is not CLOSED: its state carries a decision the run must keep getting. */
  holdsDecision(tenantId: string, runId: string): boolean {
    const breaker = this.#breakers.get(breakerKeyId({ tenantId, scope: 'RUN', runId }));
    return breaker !== undefined && breaker.state !== 'CLOSED';
  }

  /** Forgets a run the windows evicted: its breaker and latest decision go with it. */
  forgetRun(tenantId: string, runId: string): void {
    this.#drop(breakerKeyId({ tenantId, scope: 'RUN', runId }));
    this.o.bus.forgetRun(tenantId, runId);
  }

  start(tickMs = 250): void {
    this.#ticker ??= setInterval(() => {
      // An exception thrown from a timer would end the process: report it, the next tick tries again.
      try {
        this.tick();
      } catch (err) {
        this.o.log.error({ error: (err as Error).message }, 'breaker tick failed');
      }
    }, tickMs);
    this.#ticker.unref();
  }

  stop(): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }
}

function breakerKey(tenantId: string, runId: string | undefined): BreakerKey {
  return runId ? { tenantId, scope: 'RUN', runId } : { tenantId, scope: 'TENANT' };
}
