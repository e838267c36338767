// The degradation path: sees every accepted span batch (a SpanObserver, after the windows are
// updated), keeps quota shaping and provider health apart, and tells agents what to do.
//
//   model-call span ─┬─ 5xx / timeout / connection error / success ─▶ provider + model health breakers
//                    ├─ 429 ─▶ classify (request rate, token rate, daily) ─▶ THROTTLE until the reset,
//                    │          or, past maxThrottleWaitMs, capacity exhausted ─▶ route to another tier
//                    ├─ x-ratelimit-* headers ─▶ quota telemetry per provider key (WARN 70 % / 90 %)
//                    ├─ usage + pre-flight estimate ─▶ tenant token buckets (RPM, TPM) ─▶ THROTTLE
//                    └─ probe accounting of tenants being promoted
//   per tenant (and task) ─▶ TierTrack: breakers, capacity, its own p95 vs SLA, cost vs budget ─▶ tier
//   ─▶ one decision per tenant (and per run of a task with its own ladder) ─▶ DecisionBus
//   every tier change, consent request and answer ─▶ audit log (kind 'degradation')
//
// A tenant is never switched silently: a tenant that needs consent is paused (HALT) while its
// current tier is broken and a request waits for approve() / refuse(); a tenant that permits no
// usable tier is suspended (HALT, tier 4) or halted. Decisions are published only once a tenant has
// something to say (and once more to retract it), so healthy tenants cost the bus nothing.

import { randomUUID } from 'node:crypto';
import type { AuditEvent, AuditEventInput } from '../audit/audit-event.js';
import type { Decision, DecisionDraft, Scope } from '../contracts/decision.js';
import type { AgentSpan } from '../contracts/agent-span.js';
import type { SpanObserver } from '../app/pipeline.js';
import type { ModelPrice } from '../policy/policy-types.js';
import { queryRows } from '../storage/clickhouse.js';
import type { ClickHouseClient } from '@clickhouse/client';
import { nanosToMillis } from '../windows/window-time.js';
import { spanKind } from '../windows/span-facts.js';
import { classifyOutcome, classifyRateLimit, isProviderAttributed, type CallOutcome, type RateLimitClass } from './classify.js';
import { consentRequest, ladderIndex, readConsentEvents, replayConsents, type ConsentAnswers } from './consent-replay.js';
import { degradationEvent, healthTransitionEvent, type RunState } from './degradation-events.js';
import {
  SUSPEND_TIER,
  taskPolicy,
  tenantDegradationPolicy,
  type DegradationPolicy,
  type DegradationSection,
  type TaskPolicy,
  type TierEntry,
} from './degradation-schema.js';
import type { HealthBreakerView, HealthTransition } from './health-breaker.js';
import { ProviderHealth } from './provider-health.js';
import { QuotaTelemetry, type KeyQuota, type QuotaLevelChange } from './quota-telemetry.js';
import { emptyExtras, readSpanExtras, type SpanExtras } from './span-signals.js';
import { TenantLatency } from './tenant-latency.js';
import { TenantQuotas, type ReserveResult } from './tenant-quota.js';
import { TierTrack, type ConsentRequest, type EntrySignals, type TrackChange, type TrackContext, type Trigger } from './tier-track.js';
import { modelPrice } from '../windows/cost.js';

/** Where decisions go: the DecisionBus (or a wrapper that names this engine as their source). */
export interface DecisionSink {
  publish(draft: DecisionDraft): Decision;
  /** audited degradation events are pushed here when the tenant's policy says notify */
  publishBreakerEvent?(event: AuditEvent): void;
}

export interface AuditSink {
  append(input: AuditEventInput): Promise<AuditEvent>;
}

export interface DegradationLog {
  error(details: object, message: string): void;
}

export interface DegradationEngineOptions {
  bus: DecisionSink;
  audit: AuditSink;
  /** the parsed `degradation` section in force (read on every evaluation, so reloads apply at once) */
  policy: () => DegradationSection;
  now?: () => number;
  log?: DegradationLog;
  /**
   * A tenant's latency on a ladder entry, in place of the engine's own record of that tenant's calls
   * (tenant-latency.ts); never a figure over all tenants, which one tenant's slow calls would move.
   */
  latency?: (tenantId: string, provider: string, model: string) => { latencyP95Ms: number; callsPerMinute: number } | undefined;
  /** a tenant's spend rate: WindowStore.tenantMetrics */
  tenantMetrics?: (tenantId: string) => { costPerMinuteUsd: number } | undefined;
  /** a run's metrics, recorded with tier changes as the run state: WindowStore.runMetrics */
  runMetrics?: (tenantId: string, runId: string) => Readonly<Record<string, number>> | undefined;
  /** the price table, to project spend on a better tier before promoting a tenant moved for cost */
  prices?: () => Readonly<Record<string, ModelPrice>>;
  newId?: () => string;
  /** a provider key's quota level changed (as all tenants' spans describe it): for alerts and metrics */
  onQuotaLevel?: (change: QuotaLevelChange) => void;
  /** an audited degradation event of a tenant whose policy says notify */
  onNotify?: (event: AuditEvent) => void;
  /** tenants with nothing to say are forgotten after this long without spans; default 1 h */
  tenantIdleMs?: number;
  /** runs are forgotten after this long without spans; default 15 min */
  runIdleMs?: number;
}

/** approve()/refuse() on a request that is not (or no longer) pending. */
export class ConsentError extends Error {
  constructor(
    readonly code: 'NOT_FOUND' | 'EXPIRED',
    message: string,
  ) {
    super(message);
    this.name = 'ConsentError';
  }
}

export interface ConsentResult {
  request: ConsentRequest;
  /** the decision in force for the request's task once the answer was applied */
  decision: Decision;
}

export type TrackState = 'PRIMARY' | 'DEGRADED' | 'PROBING' | 'SUSPENDED' | 'HALTED' | 'PENDING_CONSENT';

export interface TrackView {
  task: string;
  state: TrackState;
  tier: number | null;
  provider: string;
  model: string;
  since: number;
  trigger: Trigger | null;
  probesLeft: number;
  recoveryWindowMs: number;
  pending: ConsentRequest | null;
  ladder: { tier: number; provider: string; model: string; level: string; why: string; reason: string }[];
}

export interface ThrottleView {
  key: string;
  provider: string;
  until: number;
  kind: RateLimitClass['kind'];
  evidence: string;
  capacityExhausted: boolean;
}

export interface DegradationStatus {
  tenantId: string;
  tracks: TrackView[];
  throttles: ThrottleView[];
  quota: { requests?: number; tokens?: number; nextCallTokens: number } | undefined;
  keys: KeyQuota[];
}

interface RunInfo {
  task: string;
  /** the task came from the task attribute: operation names no longer change it */
  sticky: boolean;
  lastSeenMs: number;
  provider: string;
  model: string;
  calls: number;
  /** the signature of the last run-level decision published; null = none */
  published: string | null;
  /** the last published decision can change with time alone (a retry deadline, a probe, a pause) */
  live: boolean;
}

interface KeyBlock {
  key: string;
  provider: string;
  /** ms since the epoch */
  until: number;
  cls: RateLimitClass;
  /** how `until` was obtained */
  how: string;
  /** when the 429 was seen */
  at: number;
}

interface TenantState {
  tenantId: string;
  tracks: Map<string, TierTrack>;
  runs: Map<string, RunInfo>;
  /** short provider 429s: THROTTLE until they reset */
  throttles: Map<string, KeyBlock>;
  /** 429s that waiting cannot fix in time: the key's tiers are blocked until they reset */
  capacity: Map<string, KeyBlock>;
  /** provider → last model call seen */
  providers: Map<string, number>;
  /** the tenant's own latencies on its ladder entries, kept while it has a latency SLA */
  latency: TenantLatency;
  /** changes made between evaluations (probe accounting), recorded by the next one */
  buffered: { track: TierTrack; change: TrackChange }[];
  lastSeenMs: number;
  /** the signature of the last tenant-wide decision published; null = none */
  published: string | null;
  /** the last tenant-wide decision can change with time alone */
  live: boolean;
  /** the last decision published per track (tenant-wide for '', a run's for a task) */
  lastDecision: Map<string, Decision>;
}

const DAY_MS = 86_400_000;
const DEFAULT_RETRY_MS = 1_000;
const RUNS_IN_EVENTS = 20;
const EVICT_EVERY_MS = 60_000;

export class DegradationEngine implements SpanObserver {
  readonly #o: DegradationEngineOptions;
  readonly #now: () => number;
  readonly #tenants = new Map<string, TenantState>();
  readonly #health: ProviderHealth;
  readonly #quotas: TenantQuotas;
  readonly #telemetry: QuotaTelemetry;
  /** the span being observed's extras (one object for all: they are read only during the visit) */
  readonly #extras = emptyExtras();
  readonly #inflight = new Set<Promise<unknown>>();
  /** the ladder entries one span's latency went to (reused: spans are recorded one at a time) */
  readonly #latencyKeys: string[] = [];
  #ticker: NodeJS.Timeout | undefined;
  #lastEviction = 0;

  constructor(options: DegradationEngineOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#health = new ProviderHealth(this.#now, () => this.#o.policy().providerHealth);
    this.#quotas = new TenantQuotas(this.#now);
    this.#telemetry = new QuotaTelemetry(this.#now, () => this.#o.policy().quotaTelemetry, options.onQuotaLevel);
    this.#lastEviction = this.#now();
  }

  observe(spans: readonly AgentSpan[], _receivedAt: number): void {
    const section = this.#o.policy();
    const now = this.#now();
    const touched = new Set<TenantState>();
    const transitions: HealthTransition[] = [];
    for (const span of spans) {
      try {
        const state = this.#observeSpan(span, section, now, transitions);
        if (state !== undefined) touched.add(state);
      } catch (err) {
        this.#o.log?.error({ error: (err as Error).message, tenantId: span.tenantId }, 'degradation: could not read a span');
      }
    }
    if (transitions.length > 0) this.#recordHealth(transitions, now);
    // A shared breaker that moved concerns every tenant; a tenant's own breaker, that tenant only.
    const everyone = transitions.some((t) => t.key.tenantId === '');
    for (const t of transitions) {
      const state = this.#tenants.get(t.key.tenantId);
      if (state !== undefined) touched.add(state);
    }
    for (const state of everyone ? this.#tenants.values() : touched) this.#evaluate(state, section, now);
  }

  /** Time-driven changes: breaker waits, throttles ending, recovery windows, consent timeouts. */
  tick(): void {
    const section = this.#o.policy();
    const now = this.#now();
    const transitions = this.#health.tick();
    if (transitions.length > 0) this.#recordHealth(transitions, now);
    for (const state of this.#tenants.values()) {
      if (transitions.length > 0 || this.#needsTick(state)) this.#evaluate(state, section, now);
    }
    if (now - this.#lastEviction >= EVICT_EVERY_MS) this.evictIdle();
  }

  start(tickMs = 250): void {
    this.#ticker ??= setInterval(() => {
      try {
        this.tick();
      } catch (err) {
        this.#o.log?.error({ error: (err as Error).message }, 'degradation: tick failed');
      }
    }, tickMs);
    this.#ticker.unref();
  }

  stop(): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }

  /** Resolves once every audit event recorded so far has been written (or has failed). */
  async flush(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  /**
   * The SDK's pre-flight check: grants one call of `tokens` tokens from the tenant's buckets (and
   * debits it), or says when it would fit. A provider throttle on the tenant's current tier refuses
   * too, with the provider's reset. Spans of reserved calls should carry
   * `breakwater.preflight.reserved = true`, so they are not debited twice.
   */
  reserve(tenantId: string, tokens: number): ReserveResult {
    if (!Number.isFinite(tokens) || tokens < 0) throw new RangeError(`reserve: tokens must be 0 or more, got ${tokens}`);
    const section = this.#o.policy();
    const policy = tenantDegradationPolicy(section, tenantId);
    const now = this.#now();
    const state = this.#tenants.get(tenantId);
    if (state !== undefined) {
      const block = this.#providerThrottle(state, state.tracks.get(''), taskPolicy(policy, ''), now);
      if (block !== null) return { granted: false, retryAfterMs: block.until - now };
    }
    return this.#quotas.reserve(tenantId, policy.quota, tokens);
  }

  async approve(tenantId: string, requestId: string, actor: string): Promise<ConsentResult> {
    return this.#answer(tenantId, requestId, (track, now) => track.approve(requestId, actor, now));
  }

  async refuse(tenantId: string, requestId: string, actor: string, reason = ''): Promise<ConsentResult> {
    return this.#answer(tenantId, requestId, (track, now) => track.refuse(requestId, actor, reason, now));
  }

  /** Requests waiting for an answer. */
  pendingConsents(tenantId: string): ConsentRequest[] {
    const state = this.#tenants.get(tenantId);
    if (state === undefined) return [];
    return [...state.tracks.values()].flatMap((t) => (t.pending === null ? [] : [t.pending]));
  }

  status(tenantId: string): DegradationStatus {
    const state = this.#tenants.get(tenantId);
    const policy = tenantDegradationPolicy(this.#o.policy(), tenantId);
    const now = this.#now();
    const tracks = state === undefined ? [] : [...state.tracks.values()].map((track) => this.#trackView(track, taskPolicy(policy, track.task)));
    const throttles: ThrottleView[] = [];
    if (state !== undefined) {
      for (const [map, capacityExhausted] of [[state.throttles, false], [state.capacity, true]] as const) {
        for (const b of map.values()) {
          if (b.until > now) throttles.push({ key: b.key, provider: b.provider, until: b.until, kind: b.cls.kind, evidence: b.cls.evidence, capacityExhausted });
        }
      }
    }
    return { tenantId, tracks, throttles, quota: this.#quotas.levels(tenantId), keys: this.#telemetry.tenantKeys(tenantId) };
  }

  /** Provider and model breakers: the shared ones, plus the tenant's own (every tenant's with '*'). */
  providerBreakers(tenantId?: string): HealthBreakerView[] {
    return this.#health.views(tenantId);
  }

  /** Quota telemetry per provider key, as all tenants' spans describe the keys. */
  quotaTelemetry(): KeyQuota[] {
    return this.#telemetry.keys();
  }

  /** What the engine holds, for bounds: tenants, and their latency entries (each at most RING_CALLS calls). */
  counts(): { tenants: number; latencyEntries: number } {
    let latencyEntries = 0;
    for (const state of this.#tenants.values()) latencyEntries += state.latency.size;
    return { tenants: this.#tenants.size, latencyEntries };
  }

  /** The run has a decision of its own published (not a plain ALLOW): the windows must not evict it for room. */
  holdsDecision(tenantId: string, runId: string): boolean {
    const published = this.#tenants.get(tenantId)?.runs.get(runId)?.published;
    return published !== undefined && published !== null && published !== PLAIN;
  }

  /** Forgets a run (call it when the windows evict the run). */
  forgetRun(tenantId: string, runId: string): void {
    this.#tenants.get(tenantId)?.runs.delete(runId);
  }

  /** Drops what idle tenants, runs, keys and breakers no longer need. */
  evictIdle(): void {
    const now = this.#now();
    this.#lastEviction = now;
    const tenantIdle = this.#o.tenantIdleMs ?? 3_600_000;
    const runIdle = this.#o.runIdleMs ?? 900_000;
    for (const [tenantId, state] of this.#tenants) {
      for (const [runId, run] of state.runs) if (now - run.lastSeenMs >= runIdle) state.runs.delete(runId);
      const quiet = [...state.tracks.values()].every((t) => t.isAtRest()) && state.throttles.size === 0 && state.capacity.size === 0;
      if (quiet && now - state.lastSeenMs >= tenantIdle) this.#tenants.delete(tenantId);
    }
    this.#quotas.evictIdle(tenantIdle);
    this.#telemetry.evictIdle(tenantIdle);
    this.#health.evictIdle(tenantIdle);
  }

  /**
   * Resumes the tiers recorded before a restart (the newest tier change per tenant and task in the
   * audit log, within `sinceMs`): a tenant that was degraded stays degraded until the recovery
   * window and probes prove its better tiers again. Returns the number of tenants/tasks resumed.
   */
  async restore(client: ClickHouseClient, options: { sinceMs?: number } = {}): Promise<number> {
    const now = this.#now();
    const since = options.sinceMs ?? now - DAY_MS;
    const rows = await queryRows<{ TenantId: string; Task: string; LastDetails: string }>(
      client,
      `SELECT TenantId, JSONExtractString(Details, 'task') AS Task, argMax(Details, Seq) AS LastDetails
       FROM audit_events
       WHERE Kind = 'degradation' AND JSONExtractString(Details, 'event') = 'tier_change'
         AND EventTime >= fromUnixTimestamp64Milli({sinceMs:Int64}, 'UTC')
       GROUP BY TenantId, Task`,
      { sinceMs: Math.floor(since) },
    );
    const section = this.#o.policy();
    let restored = 0;
    for (const row of rows) {
      let details: { to?: { tier?: number | null; provider?: string; model?: string } };
      try {
        details = JSON.parse(row.LastDetails) as typeof details;
      } catch {
        continue;
      }
      const to = details.to;
      if (to === undefined || to.tier === undefined || to.tier === 0) continue;
      const tp = taskPolicy(tenantDegradationPolicy(section, row.TenantId), row.Task);
      if (!tp.enabled || tp.tiers.length === 0) continue;
      const index = ladderIndex({ tier: to.tier, provider: to.provider ?? '', model: to.model ?? '' }, tp.tiers);
      if (index < 0) continue;
      const state = this.#tenant(row.TenantId, now);
      const track = this.#track(state, tp.task, tenantDegradationPolicy(section, row.TenantId), now);
      track.restore(index, { kind: 'restored', scope: 'TENANT', metric: '', threshold: 0, observed: 0, detail: 'tier resumed after a restart', provider: to.provider ?? '', model: to.model ?? '' }, now);
      restored++;
    }
    this.#restoreConsents(replayConsents(await readConsentEvents(client, since)), section, now);
    for (const state of this.#tenants.values()) this.#evaluate(state, section, now);
    return restored;
  }

  /**
   * The answers of each tenant's current incident go back into its track: a restart neither asks
   * again for a tier already approved nor offers one refused. A request left unanswered is closed
   * in the log as withdrawn: the signals behind it (breakers, latency, spend) start afresh after a
   * restart, and the switch is asked for again, under a new id, if it is still needed.
   */
  #restoreConsents(answers: readonly ConsentAnswers[], section: DegradationSection, now: number): void {
    for (const a of answers) {
      const policy = tenantDegradationPolicy(section, a.tenantId);
      const tp = taskPolicy(policy, a.task);
      if (!tp.enabled || tp.tiers.length === 0 || tp.task !== a.task) continue;
      const state = this.#tenant(a.tenantId, now);
      const track = this.#track(state, tp.task, policy, now);
      track.restoreConsents(a.approvedUpTo, a.refusedFrom);
      if (a.pending !== null) {
        const request = consentRequest(a.tenantId, a.pending, tp.tiers);
        state.buffered.push({ track, change: { kind: 'consent_withdrawn', request, reason: 'Breakwater restarted before an answer; the switch is asked again if still needed', at: now } });
      }
    }
  }

  // ---- spans ----

  #observeSpan(span: AgentSpan, section: DegradationSection, now: number, transitions: HealthTransition[]): TenantState | undefined {
    if (span.tenantId === '') return undefined;
    const kind = spanKind(span.operation);
    const extras = readSpanExtras(span, section.taskAttribute, this.#extras);
    const taskAttr = extras.task;
    if (kind !== 'model' && taskAttr === '') return undefined;
    const state = this.#tenant(span.tenantId, now);
    const policy = tenantDegradationPolicy(section, span.tenantId);
    const run = this.#run(state, span.runId, now);
    if (taskAttr !== '') {
      run.task = Object.hasOwn(policy.tasks, taskAttr) ? taskAttr : '';
      run.sticky = true;
    } else if (!run.sticky) {
      run.task = Object.hasOwn(policy.tasks, span.operation) ? span.operation : '';
    }
    if (kind !== 'model') return state;

    const model = span.requestModel !== '' ? span.requestModel : span.responseModel;
    const endMs = Math.min(now, nanosToMillis(span.endTimeUnixNano));
    const startMs = nanosToMillis(span.startTimeUnixNano);
    const durationMs = Math.max(0, endMs - startMs);
    run.lastSeenMs = now;
    run.provider = span.provider;
    run.model = model;
    run.calls++;
    if (span.provider !== '') state.providers.set(span.provider, now);

    const outcome = classifyOutcome(span);
    const healthy = healthOf(outcome);
    if (span.provider !== '' && healthy !== null) {
      const slow = durationMs >= section.providerHealth.slowCallDurationMs;
      this.#health.record(span.tenantId, span.provider, model, isProviderAttributed(outcome, true, span.provider), slow, transitions, now, startMs > 0 ? startMs : undefined);
    }

    const key = extras.providerKey;
    this.#recordLatency(state, policy, span, key, endMs, durationMs);
    // OpenAI's and Anthropic's rate-limit headers, as the normalizer put them in these columns.
    this.#telemetry.observe(span.tenantId, key, span.provider, {
      remainingRequests: span.rateLimitRemainingRequests,
      limitRequests: span.rateLimitLimitRequests,
      remainingTokens: span.rateLimitRemainingTokens,
      limitTokens: span.rateLimitLimitTokens,
    }, now);
    if (outcome.kind === 'rate_limited') {
      this.#rateLimited(state, span, extras, endMs, policy, now);
    } else if (outcome.kind === 'success') {
      // A call that started after a 429 and succeeded shows the quota is back.
      liftIfOlder(state.throttles, key, startMs);
      liftIfOlder(state.capacity, key, startMs);
      this.#telemetry.quotaBack(span.tenantId, key, startMs, now);
    }

    this.#debit(span, extras, policy, now);

    for (const track of state.tracks.values()) {
      const entry = track.currentEntry();
      // A call that started before the tenant was moved here, or before the fleet's probes proved the
      // provider back, says nothing about the promotion.
      if (entry === undefined || startMs < track.since || !entryMatches(entry, span, key)) continue;
      if (healthy === false && startMs < this.#health.cleanSince(entry.provider, entry.model)) continue;
      const detail = outcome.kind === 'failure' ? outcome.cause : outcome.kind;
      for (const change of track.onCall(track.position, healthy, now, detail)) state.buffered.push({ track, change });
    }
    return state;
  }

  /** The call's latency, on every ladder entry of the tenant it ran on, when the tenant has a latency SLA. */
  #recordLatency(state: TenantState, policy: DegradationPolicy, span: AgentSpan, key: string, endMs: number, durationMs: number): void {
    if (policy.triggers.latencyP95Ms === undefined) {
      if (state.latency.size > 0) state.latency.clear();
      return;
    }
    const seen = this.#latencyKeys;
    seen.length = 0;
    this.#recordOnLadder(state, policy.tiers, span, key, endMs, durationMs);
    for (const task in policy.tasks) {
      const tiers = policy.tasks[task]?.tiers;
      if (tiers !== undefined) this.#recordOnLadder(state, tiers, span, key, endMs, durationMs);
    }
  }

  #recordOnLadder(state: TenantState, tiers: readonly TierEntry[], span: AgentSpan, key: string, endMs: number, durationMs: number): void {
    const seen = this.#latencyKeys;
    for (const entry of tiers) {
      if (!entryMatches(entry, span, key)) continue;
      const id = `${entry.provider}\u0000${entry.model}`;
      if (seen.includes(id)) continue;
      seen.push(id);
      state.latency.record(entry.provider, entry.model, endMs, durationMs);
    }
  }

  #rateLimited(state: TenantState, span: AgentSpan, extras: SpanExtras, endMs: number, policy: DegradationPolicy, now: number): void {
    const key = extras.providerKey;
    const cls = classifyRateLimit(span, endMs);
    let resetMs = cls.resetMs;
    let how = span.retryAfterMs >= 0 ? `retry-after ${span.retryAfterMs} ms` : 'reset header';
    if (resetMs < 0) {
      if (cls.kind === 'request_rate' && span.rateLimitLimitRequests > 0) {
        resetMs = Math.ceil(60_000 / span.rateLimitLimitRequests);
        how = `one request at the key's ${span.rateLimitLimitRequests}/min`;
      } else if (cls.kind === 'token_rate' && span.rateLimitLimitTokens > 0) {
        const pre = extras.preflightTokens;
        const needed = Math.max(1, pre > 0 ? pre : span.inputTokens);
        resetMs = Math.ceil((needed * 60_000) / span.rateLimitLimitTokens);
        how = `${needed} tokens at the key's ${span.rateLimitLimitTokens}/min`;
      } else if (cls.kind === 'daily') {
        resetMs = nextUtcMidnight(endMs) - endMs;
        how = 'daily quota: until the next UTC midnight';
      } else {
        resetMs = DEFAULT_RETRY_MS;
        how = 'no retry-after or reset header: 1 s';
      }
    }
    const until = endMs + resetMs;
    this.#telemetry.rateLimited(span.tenantId, key, span.provider, cls, until);
    const block: KeyBlock = { key, provider: span.provider, until, cls, how, at: now };
    if (until > now) keepLater(state.throttles, block);
    if (cls.kind === 'daily' || until - now > policy.triggers.maxThrottleWaitMs) keepLater(state.capacity, block);
  }

  #debit(span: AgentSpan, extras: SpanExtras, policy: DegradationPolicy, now: number): void {
    const limits = policy.quota;
    if (limits.requestsPerMinute === undefined && limits.tokensPerMinute === undefined) return;
    const pre = extras.preflightTokens;
    const actual = span.inputTokens + span.outputTokens;
    if (extras.preflightReserved) {
      // The reservation debited the request and the estimate; only an underestimate is owed.
      this.#quotas.debit(span.tenantId, limits, 0, Math.max(0, actual - Math.max(0, pre)), actual, pre, now);
      return;
    }
    const tokens = actual > 0 ? actual : span.isError ? 0 : Math.max(0, pre);
    this.#quotas.debit(span.tenantId, limits, 1, tokens, actual, pre, now);
  }

  // ---- evaluation and decisions ----

  #evaluate(state: TenantState, section: DegradationSection, now: number): Promise<unknown>[] {
    try {
      return this.#evaluateTenant(state, section, now);
    } catch (err) {
      this.#o.log?.error({ error: (err as Error).message, tenantId: state.tenantId }, 'degradation: evaluation failed');
      return [];
    }
  }

  #evaluateTenant(state: TenantState, section: DegradationSection, now: number): Promise<unknown>[] {
    const policy = tenantDegradationPolicy(section, state.tenantId);
    for (const [map, keepFor] of [[state.throttles, 0], [state.capacity, policy.recovery.maxWindowMs]] as const) {
      for (const [key, block] of map) if (block.until + keepFor <= now) map.delete(key);
    }
    // The tracks in use: the default, and each task override some run has.
    const tasks = hasTaskOverrides(policy) ? tasksInUse(state) : DEFAULT_ONLY;
    for (const task of tasks) this.#track(state, task, policy, now);

    const changes = state.buffered.length === 0 ? [] : state.buffered.splice(0);
    for (const [task, track] of state.tracks) {
      if (!tasks.has(task) && track.isAtRest() && track.pending === null) {
        state.tracks.delete(task);
        continue;
      }
      const tp = taskPolicy(policy, task);
      for (const change of track.evaluate(this.#context(state, tp, policy, now))) {
        // A promotion's probes start from a clean slate: the incident's failures no longer count against them.
        if (change.kind === 'tier_change' && change.cause === 'promote') this.#health.forget(state.tenantId, change.to.provider, change.to.model, now);
        changes.push({ track, change });
      }
    }

    this.#publish(state, policy, now);

    const appends: Promise<unknown>[] = [];
    for (const { track, change } of changes) appends.push(this.#record(state, track, policy, change));
    return appends;
  }

  #context(state: TenantState, tp: TaskPolicy, policy: DegradationPolicy, now: number): TrackContext {
    return {
      tenantId: state.tenantId,
      now,
      policy: tp,
      tenant: policy,
      signals: (entry) => this.#signals(state, entry, now),
      costPerMinuteUsd: this.#o.tenantMetrics?.(state.tenantId)?.costPerMinuteUsd,
      priceRatio: (from, to) => this.#priceRatio(from, to),
      newId: this.#o.newId ?? randomUUID,
    };
  }

  #signals(state: TenantState, entry: TierEntry, now: number): EntrySignals {
    let capacity: EntrySignals['capacity'] = null;
    for (const block of state.capacity.values()) {
      if (!blockApplies(block, entry)) continue;
      if (capacity === null || block.until > capacity.until) capacity = { until: block.until, kind: block.cls.kind, detail: `${block.cls.evidence}; ${block.how}` };
    }
    const metrics = this.#o.latency !== undefined ? this.#o.latency(state.tenantId, entry.provider, entry.model) : state.latency.read(entry.provider, entry.model, now);
    const health = this.#health.coverage(state.tenantId, entry.provider, entry.model);
    return {
      openBreakers: health.open,
      breakerLeftOpenAt: health.leftOpenAt,
      capacity,
      latency: metrics === undefined ? undefined : { p95Ms: metrics.latencyP95Ms, callsPerMinute: metrics.callsPerMinute },
    };
  }

  #priceRatio(fromModel: string, toModel: string): number {
    const prices = this.#o.prices?.() ?? {};
    const from = modelPrice(prices, fromModel);
    const to = modelPrice(prices, toModel);
    if (from === undefined || to === undefined || from.input + from.output <= 0) return 1;
    return (to.input + to.output) / (from.input + from.output);
  }

  /**
   * Publishes what changed. A tenant without task overrides gets one tenant-wide decision (its runs
   * inherit it). A tenant with task overrides gets a decision per run, each from its task's ladder,
   * and tenant-wide only what binds every run (its quota buckets): the bus combines a run's decision
   * with the tenant-wide one by severity, so a tenant-wide DEGRADE from the default ladder would
   * otherwise reach runs whose task has a different ladder.
   */
  #publish(state: TenantState, policy: DegradationPolicy, now: number): void {
    const perRun = hasTaskOverrides(policy);
    const tenantDraft = perRun
      ? this.#decision(state, undefined, taskPolicy(policy, ''), policy, now, undefined, { provider: false })
      : this.#decision(state, state.tracks.get(''), taskPolicy(policy, ''), policy, now, undefined);
    const tenantSignature = signature(tenantDraft, now);
    if (tenantSignature !== state.published && !(isPlain(tenantDraft) && (state.published === null || state.published === PLAIN))) {
      const decision = this.#o.bus.publish(tenantDraft);
      if (!perRun) state.lastDecision.set('', decision);
      state.published = isPlain(tenantDraft) ? PLAIN : tenantSignature;
      state.live = isLive(tenantDraft);
    }
    for (const [runId, run] of state.runs) {
      if (!perRun && run.task === '' && run.published === null) continue;
      const draft =
        !perRun && run.task === ''
          ? { ...allowDraft(state.tenantId), runId } // its tenant-wide decision governs: retract the run's own
          : this.#decision(state, state.tracks.get(run.task), taskPolicy(policy, run.task), policy, now, runId);
      const sig = signature(draft, now);
      if (sig === run.published || (isPlain(draft) && (run.published === null || run.published === PLAIN))) continue;
      const decision = this.#o.bus.publish(draft);
      if (perRun || run.task !== '') state.lastDecision.set(run.task, decision);
      run.published = isPlain(draft) ? PLAIN : sig;
      run.live = isLive(draft);
    }
  }

  /** The decision for one track: its tier, then a throttle, then a quota warning on top. */
  #decision(
    state: TenantState,
    track: TierTrack | undefined,
    tp: TaskPolicy,
    policy: DegradationPolicy,
    now: number,
    runId: string | undefined,
    include: { provider: boolean } = { provider: true },
  ): DecisionDraft {
    let draft: DecisionDraft = { ...allowDraft(state.tenantId), ...(runId === undefined ? {} : { runId }) };
    const onLadder = tp.enabled && tp.tiers.length > 0 && track !== undefined;
    if (onLadder && (track.touched || track.pending !== null)) draft = this.#tierDecision(track, tp, draft, now);

    const throttle = this.#throttle(state, onLadder ? track : undefined, tp, policy, now, include.provider);
    if (throttle !== null && draft.action !== 'HALT') {
      if (draft.action === 'DEGRADE') {
        draft = { ...draft, retryAfterMs: Math.max(draft.retryAfterMs, throttle.retryAfterMs), reason: `${draft.reason}; ${throttle.reason}` };
      } else {
        draft = { ...draft, ...throttle, action: 'THROTTLE', state: 'CLOSED' };
      }
    } else if (draft.action === 'ALLOW' && include.provider) {
      const entry = onLadder ? track.currentEntry() : undefined;
      const warning = this.#telemetry.tenantWarning(state.tenantId, (key, provider) => entry === undefined || keyMatches(entry, key, provider));
      if (warning !== null) {
        const settings = this.#o.policy().quotaTelemetry;
        draft = {
          ...draft,
          action: 'WARN',
          scope: 'PROVIDER',
          metric: 'quotaUtilization',
          threshold: warning.level === 'WARN' ? settings.warnAt : settings.criticalAt,
          observed: warning.utilization,
          reason: `provider key ${warning.key} is at ${Math.round(warning.utilization * 100)} % of its ${warning.axis || 'quota'} limit (${warning.level})`,
        };
      }
    }
    return draft;
  }

  #tierDecision(track: TierTrack, tp: TaskPolicy, base: DecisionDraft, now: number): DecisionDraft {
    const entry = track.currentEntry();
    const trigger = track.trigger;
    const status = track.statuses[track.position];
    const pending = track.pending;
    const currentBroken = entry === undefined || status === undefined || status.level === 'hard' || status.level === 'unusable';
    const crossing = (t: Trigger | null) => ({ scope: (t?.scope ?? 'TENANT') as Scope, metric: t?.metric ?? '', threshold: t?.threshold ?? 0, observed: t?.observed ?? 0 });

    if (pending !== null && currentBroken) {
      return {
        ...base,
        ...crossing(pending.trigger),
        action: 'HALT',
        state: 'OPEN',
        reason: `paused: switching to ${describe(pending.to)} needs approval (request ${pending.id}); ${pending.trigger.detail}`,
        retryAfterMs: Math.max(0, pending.expiresAt - now),
        ...(entry !== undefined ? { tier: entry.tier, degraded: entry.tier > 0 } : {}),
      };
    }
    let draft: DecisionDraft;
    if (entry === undefined) {
      const suspend = tp.permittedTiers.includes(SUSPEND_TIER);
      const why = ladderSummary(track, tp);
      draft = {
        ...base,
        ...crossing(trigger),
        action: 'HALT',
        state: 'OPEN',
        reason: suspend
          ? `suspended: no permitted tier is usable (${why}); resumes by itself when one recovers`
          : `halted: no permitted tier is usable and the tenant does not permit suspension (${why})`,
        retryAfterMs: this.#resumeEstimate(track, now),
        ...(suspend ? { tier: SUSPEND_TIER, degraded: true } : { degraded: false }),
      };
    } else if (entry.tier === 0) {
      draft = {
        ...base,
        ...(track.probing ? crossing(trigger) : {}),
        action: 'ALLOW',
        state: track.probing ? 'HALF_OPEN' : 'CLOSED',
        reason: track.probing
          ? `back on the primary ${entry.provider}/${entry.model}, probing: ${track.probesLeft} call(s) to confirm`
          : `on the primary ${entry.provider}/${entry.model}`,
        fallbackModel: entry.model,
        tier: 0,
        degraded: false,
      };
    } else {
      draft = {
        ...base,
        ...crossing(trigger),
        action: 'DEGRADE',
        state: track.probing ? 'HALF_OPEN' : 'OPEN',
        reason: `use ${entry.model} via ${entry.provider} (tier ${entry.tier})${track.probing ? `, probing: ${track.probesLeft} call(s) to confirm` : ''}: ${trigger?.detail ?? 'degraded'}`,
        fallbackModel: entry.model,
        tier: entry.tier,
        degraded: true,
      };
    }
    if (pending !== null) {
      draft = { ...draft, action: draft.action === 'ALLOW' ? 'WARN' : draft.action, reason: `${draft.reason}; switching to ${describe(pending.to)} awaits approval (request ${pending.id})` };
    }
    return draft;
  }

  /** When a suspended tenant should look again: the earliest a usable tier could return, plus the window. */
  #resumeEstimate(track: TierTrack, now: number): number {
    let earliest = Infinity;
    for (const status of track.statuses) {
      if (status.level === 'unusable') continue;
      const from = status.level === 'hard' ? status.resumeAt : status.level === 'ok' ? Math.max(now, status.blockedUntil) : now;
      if (from === null) continue;
      earliest = Math.min(earliest, from + track.recoveryWindowMs);
    }
    return Number.isFinite(earliest) ? Math.max(0, earliest - now) : track.recoveryWindowMs;
  }

  /** The longest throttle that applies: the tenant's buckets, or a provider 429 on the key in use. */
  #throttle(
    state: TenantState,
    track: TierTrack | undefined,
    tp: TaskPolicy,
    policy: DegradationPolicy,
    now: number,
    includeProvider: boolean,
  ): { scope: Scope; metric: string; threshold: number; observed: number; retryAfterMs: number; reason: string } | null {
    let best: { scope: Scope; metric: string; threshold: number; observed: number; retryAfterMs: number; reason: string } | null = null;
    const shortfall = this.#quotas.shortfall(state.tenantId, policy.quota);
    if (shortfall !== null) {
      best = {
        scope: 'TENANT',
        metric: shortfall.axis === 'requests' ? 'requestsPerMinute' : 'tokensPerMinute',
        threshold: shortfall.limitPerMinute,
        observed: Math.floor(shortfall.available),
        retryAfterMs: shortfall.retryAfterMs,
        reason: `tenant quota: the next call needs ${Math.ceil(shortfall.needed)} ${shortfall.axis}, ${Math.floor(shortfall.available)} left of ${shortfall.limitPerMinute}/min; enough refills in ${shortfall.retryAfterMs} ms`,
      };
    }
    const block = includeProvider ? this.#providerThrottle(state, track, tp, now) : null;
    if (block !== null && (best === null || block.until - now > best.retryAfterMs)) {
      best = {
        scope: 'PROVIDER',
        metric: `rateLimit.${block.cls.kind}`,
        threshold: 0,
        observed: 0,
        retryAfterMs: Math.ceil(block.until - now),
        reason: `provider key ${block.key} is rate-limited (${block.cls.kind}: ${block.cls.evidence}); retry after ${Math.ceil(block.until - now)} ms (${block.how})`,
      };
    }
    return best;
  }

  /** The provider 429 that governs the tenant's current tier (any of its keys when it has no ladder). */
  #providerThrottle(state: TenantState, track: TierTrack | undefined, tp: TaskPolicy, now: number): KeyBlock | null {
    const onLadder = track !== undefined && tp.enabled && tp.tiers.length > 0;
    const entry = onLadder ? (track.currentEntry() ?? (track.touched ? undefined : tp.tiers[0])) : undefined;
    if (onLadder && entry === undefined) return null; // suspended or halted: the HALT says it all
    let best: KeyBlock | null = null;
    for (const block of state.throttles.values()) {
      if (block.until <= now) continue;
      // A 429 on the tier in use applies; so does one on a key the ladder does not route around.
      if (entry !== undefined && !blockApplies(block, entry) && tp.tiers.some((e) => blockApplies(block, e))) continue;
      if (best === null || block.until > best.until) best = block;
    }
    return best;
  }

  #needsTick(state: TenantState): boolean {
    if (state.live || state.throttles.size > 0 || state.capacity.size > 0 || state.buffered.length > 0) return true;
    for (const track of state.tracks.values()) if (!track.isAtRest()) return true;
    for (const run of state.runs.values()) if (run.live) return true;
    // a quota warning ends when its headers go stale
    return this.#telemetry.nextStaleAt(state.tenantId) !== null && (state.published !== null && state.published !== PLAIN);
  }

  // ---- consent ----

  async #answer(tenantId: string, requestId: string, apply: (track: TierTrack, now: number) => TrackChange[]): Promise<ConsentResult> {
    const state = this.#tenants.get(tenantId);
    const track = state === undefined ? undefined : [...state.tracks.values()].find((t) => t.pending?.id === requestId);
    if (state === undefined || track === undefined || track.pending === null) {
      throw new ConsentError('NOT_FOUND', `no pending degradation request ${requestId} for tenant ${tenantId}`);
    }
    const request = track.pending;
    const section = this.#o.policy();
    const now = this.#now();
    if (now >= request.expiresAt) {
      await Promise.all(this.#evaluateTenant(state, section, now));
      throw new ConsentError('EXPIRED', `degradation request ${requestId} expired at ${new Date(request.expiresAt).toISOString()}`);
    }
    for (const change of apply(track, now)) state.buffered.push({ track, change });
    // The operator is answered once the answer and its consequences are recorded.
    await Promise.all(this.#evaluateTenant(state, section, now));
    const decision = state.lastDecision.get(track.task) ?? this.#stampless(state, track, section, now);
    return { request, decision };
  }

  /** The track's decision as it stands when nothing was published for it (a plain ALLOW). */
  #stampless(state: TenantState, track: TierTrack, section: DegradationSection, now: number): Decision {
    const policy = tenantDegradationPolicy(section, state.tenantId);
    const draft = this.#decision(state, track, taskPolicy(policy, track.task), policy, now, undefined);
    return { ...draft, sequence: 0, issuedAt: new Date(now).toISOString() };
  }

  // ---- audit ----

  #record(state: TenantState, track: TierTrack, policy: DegradationPolicy, change: TrackChange): Promise<AuditEvent> {
    const tp = taskPolicy(policy, track.task);
    const runs = [...state.runs.entries()]
      .filter(([, run]) => track.task === '' || run.task === track.task)
      .sort((a, b) => b[1].lastSeenMs - a[1].lastSeenMs);
    const runStates: RunState[] = runs.slice(0, RUNS_IN_EVENTS).map(([runId, run]) => {
      const metrics = this.#o.runMetrics?.(state.tenantId, runId);
      return { runId, task: run.task, lastSeenMs: run.lastSeenMs, provider: run.provider, model: run.model, calls: run.calls, ...(metrics ? { metrics } : {}) };
    });
    const input = degradationEvent(change, {
      tenantId: state.tenantId,
      task: track.task,
      notify: tp.notify,
      decision: state.lastDecision.get(track.task),
      runs: runStates,
      activeRuns: runs.length,
    });
    return this.#append(input, tp.notify);
  }

  #recordHealth(transitions: HealthTransition[], now: number): void {
    // The tenants a shared breaker concerns: those that called the provider within the idle time.
    const recentMs = this.#o.tenantIdleMs ?? 3_600_000;
    for (const transition of transitions) {
      const view = this.#health.views(transition.key.tenantId || undefined).find((v) => sameKey(v.key, transition.key));
      const tenants =
        transition.key.tenantId !== ''
          ? [transition.key.tenantId]
          : [...this.#tenants.values()].filter((s) => now - (s.providers.get(transition.key.provider) ?? -Infinity) <= recentMs).map((s) => s.tenantId);
      for (const tenantId of tenants) void this.#append(healthTransitionEvent(tenantId, transition, view), true).catch(() => undefined);
    }
  }

  /** Appends without holding up the decision path; failures are logged (and rethrown to awaiting callers). */
  #append(input: AuditEventInput, notify: boolean): Promise<AuditEvent> {
    const appended = this.#o.audit.append(input).then((event) => {
      if (notify) {
        this.#o.bus.publishBreakerEvent?.(event);
        this.#o.onNotify?.(event);
      }
      return event;
    });
    const tracked = appended.catch((err: unknown) => {
      this.#o.log?.error({ error: (err as Error).message, tenantId: input.tenantId }, 'degradation: could not record an event in the audit log');
    });
    this.#inflight.add(tracked);
    void tracked.finally(() => this.#inflight.delete(tracked));
    return appended;
  }

  // ---- state ----

  #tenant(tenantId: string, now: number): TenantState {
    let state = this.#tenants.get(tenantId);
    if (state === undefined) {
      state = {
        tenantId,
        tracks: new Map(),
        runs: new Map(),
        throttles: new Map(),
        capacity: new Map(),
        providers: new Map(),
        latency: new TenantLatency(),
        buffered: [],
        lastSeenMs: now,
        published: null,
        live: false,
        lastDecision: new Map(),
      };
      this.#tenants.set(tenantId, state);
    }
    state.lastSeenMs = now;
    return state;
  }

  #run(state: TenantState, runId: string, now: number): RunInfo {
    let run = state.runs.get(runId);
    if (run === undefined) {
      run = { task: '', sticky: false, lastSeenMs: now, provider: '', model: '', calls: 0, published: null, live: false };
      state.runs.set(runId, run);
    }
    return run;
  }

  #track(state: TenantState, task: string, policy: DegradationPolicy, now: number): TierTrack {
    let track = state.tracks.get(task);
    if (track === undefined) state.tracks.set(task, (track = new TierTrack(task, now, policy.recovery.windowMs)));
    return track;
  }

  #trackView(track: TierTrack, tp: TaskPolicy): TrackView {
    const position = track.positionAt(track.position);
    const state: TrackState =
      tp.tiers.length === 0 || !tp.enabled
        ? 'PRIMARY'
        : track.pending !== null
        ? 'PENDING_CONSENT'
        : track.isOffLadder()
          ? position.tier === null
            ? 'HALTED'
            : 'SUSPENDED'
          : track.probing
            ? 'PROBING'
            : (position.tier ?? 0) > 0
              ? 'DEGRADED'
              : 'PRIMARY';
    return {
      task: track.task,
      state,
      tier: tp.tiers.length === 0 ? null : position.tier,
      provider: position.provider,
      model: position.model,
      since: track.since,
      trigger: track.trigger,
      probesLeft: track.probesLeft,
      recoveryWindowMs: track.recoveryWindowMs,
      pending: track.pending,
      ladder: tp.tiers.map((entry, i) => {
        const status = track.statuses[i];
        return { tier: entry.tier, provider: entry.provider, model: entry.model, level: status?.level ?? 'ok', why: status?.why ?? '', reason: status?.trigger?.detail ?? '' };
      }),
    };
  }
}

const PLAIN = 'plain';
const DEFAULT_ONLY: ReadonlySet<string> = new Set(['']);

function hasTaskOverrides(policy: DegradationPolicy): boolean {
  return Object.keys(policy.tasks).length > 0;
}

function tasksInUse(state: TenantState): Set<string> {
  const tasks = new Set(['']);
  for (const run of state.runs.values()) if (run.task !== '') tasks.add(run.task);
  return tasks;
}

function allowDraft(tenantId: string): DecisionDraft {
  return { tenantId, scope: 'TENANT', action: 'ALLOW', state: 'CLOSED', reason: '', metric: '', threshold: 0, observed: 0, retryAfterMs: 0 };
}

/** Whether a decision can change with time alone: anything but a steady ALLOW. */
function isLive(draft: DecisionDraft): boolean {
  return draft.action !== 'ALLOW' || draft.state !== 'CLOSED' || draft.retryAfterMs > 0;
}

function isPlain(draft: DecisionDraft): boolean {
  return draft.action === 'ALLOW' && draft.tier === undefined && draft.degraded !== true;
}

/**
 * What an agent acts on; the retry deadline to the second. Computed for every run of a touched
 * tenant on every request, hence a concatenation rather than JSON.stringify (several times
 * slower). The fields are enums, numbers and policy names: NUL separates them, \u0001 marks one absent.
 */
function signature(draft: DecisionDraft, now: number): string {
  const deadline = draft.retryAfterMs > 0 ? Math.round((now + draft.retryAfterMs) / 1000) : 0;
  const tier = draft.tier === undefined ? '\u0001' : draft.tier;
  const fallback = draft.fallbackModel === undefined ? '\u0001' : draft.fallbackModel;
  const degraded = draft.degraded === undefined ? '\u0001' : draft.degraded;
  return `${draft.action}\u0000${draft.state}\u0000${draft.scope}\u0000${draft.metric}\u0000${draft.threshold}\u0000${tier}\u0000${fallback}\u0000${degraded}\u0000${deadline}`;
}

function healthOf(outcome: CallOutcome): boolean | null {
  switch (outcome.kind) {
    case 'success':
    case 'client_error':
      return true;
    case 'failure':
      return false;
    default:
      return null;
  }
}

function keyMatches(entry: TierEntry, key: string, provider: string): boolean {
  return entry.key !== undefined ? entry.key === key : provider === entry.provider;
}

function blockApplies(block: KeyBlock, entry: TierEntry): boolean {
  return keyMatches(entry, block.key, block.provider);
}

/** Whether a model call ran on a ladder entry: same provider (and key, when the entry names one) and model. */
function entryMatches(entry: TierEntry, span: AgentSpan, key: string): boolean {
  if (span.provider !== entry.provider) return false;
  if (entry.key !== undefined && entry.key !== key) return false;
  return span.requestModel === entry.model || span.responseModel === entry.model || (span.requestModel === '' && span.responseModel.startsWith(`${entry.model}-`));
}

function keepLater(map: Map<string, KeyBlock>, block: KeyBlock): void {
  const existing = map.get(block.key);
  if (existing === undefined || block.until >= existing.until) map.set(block.key, block);
}

function nextUtcMidnight(ms: number): number {
  return (Math.floor(ms / DAY_MS) + 1) * DAY_MS;
}

function describe(position: { tier: number | null; provider: string; model: string }): string {
  if (position.tier === null) return 'halt';
  if (position.tier === SUSPEND_TIER) return 'suspend';
  return `${position.model} via ${position.provider} (tier ${position.tier})`;
}

function ladderSummary(track: TierTrack, tp: TaskPolicy): string {
  return tp.tiers
    .map((entry, i) => {
      const status = track.statuses[i];
      const why = status === undefined ? 'unknown' : status.level === 'unusable' ? status.why : (status.trigger?.detail ?? status.level);
      return `tier ${entry.tier} ${entry.provider}/${entry.model}: ${why}`;
    })
    .join('; ');
}

function sameKey(a: { scope: string; provider: string; model: string; tenantId: string }, b: { scope: string; provider: string; model: string; tenantId: string }): boolean {
  return a.scope === b.scope && a.provider === b.provider && a.model === b.model && a.tenantId === b.tenantId;
}

/** Lifts the block on `key` when it was set before `startMs` (a call that started after it went through). */
function liftIfOlder(blocks: Map<string, KeyBlock>, key: string, startMs: number): void {
  const block = blocks.get(key);
  if (block !== undefined && startMs > block.at) blocks.delete(key);
}
