// Where one tenant (for one task) stands on its fallback ladder, and the rules that move it.
//
// Each evaluation grades every rung of the ladder:
//   unusable  not permitted, excluded for data residency, or refused by the tenant in this incident
//   hard      a provider or model breaker covering it is OPEN, its provider key's quota is exhausted
//             beyond what throttling can wait out, or a promotion probe on it just failed
//   soft      the p95 latency of the tenant's own calls on it is over its SLA, or the tenant's spend
//             rate calls for a cheaper tier (both with a hold time and a lower clearing level: hysteresis;
//             the spend skips rungs priced like the current one)
//   ok        none of these
// and picks the best `ok` rung; with none, it stays on a `soft` current rung (a slow primary beats a
// suspension), else the best `soft` one, else suspend (tier 4; HALT when 4 is not permitted).
//
// Moving down is immediate (the breakers and hold times already filtered noise), unless the tenant
// wants consent for that tier: a ConsentRequest is raised and the tenant stays put (told to pause
// when its current rung is hard-blocked) until approve(), refuse() or the timeout. Moving up waits
// until the better rung has been clear for the recovery window, then promotes tentatively: the
// first `probeCalls` calls on the promoted rung are probes; a failure demotes again at once and
// multiplies the window (capped), so a provider that keeps failing its probes is retried less and
// less often instead of flapping. Probes passed on the primary end the incident: approvals,
// refusals and the window start afresh.

import type { Scope } from '../contracts/decision.js';
import type { RateLimitKind } from './classify.js';
import { isExcluded, SUSPEND_TIER, type DegradationPolicy, type TaskPolicy, type TierEntry } from './degradation-schema.js';
import type { HealthBreakerView } from './health-breaker.js';

export type TriggerKind =
  | 'provider_breaker'
  | 'model_breaker'
  | 'capacity'
  | 'latency'
  | 'cost'
  | 'probe_failed'
  | 'recovered'
  | 'policy'
  | 'restored';

/** Why a tenant moved: what was measured against what. */
export interface Trigger {
  kind: TriggerKind;
  scope: Scope;
  metric: string;
  threshold: number;
  observed: number;
  detail: string;
  provider: string;
  model: string;
}

/** A place on the ladder: a rung, or off it (suspended, or halted when suspend is not permitted). */
export interface Position {
  index: number;
  /** 0–3 on the ladder, 4 suspended, null halted */
  tier: number | null;
  provider: string;
  model: string;
}

export interface ConsentRequest {
  id: string;
  tenantId: string;
  /** '' = the tenant's default; else the task override */
  task: string;
  from: Position;
  to: Position;
  trigger: Trigger;
  requestedAt: number;
  expiresAt: number;
}

export type TierChangeCause = 'demote' | 'promote' | 'probe_failed' | 'policy' | 'restored';

export type TrackChange =
  | { kind: 'tier_change'; cause: TierChangeCause; from: Position; to: Position; trigger: Trigger; at: number; probing: boolean }
  | { kind: 'probes_passed'; position: Position; at: number }
  | { kind: 'consent_requested'; request: ConsentRequest }
  | { kind: 'consent_withdrawn'; request: ConsentRequest; reason: string; at: number }
  | { kind: 'consent_approved'; request: ConsentRequest; actor: string; at: number }
  | { kind: 'consent_refused'; request: ConsentRequest; actor: string; reason: string; at: number }
  | { kind: 'consent_expired'; request: ConsentRequest; at: number }
  /** the incident ended: approvals (up to `approvedUpTo`) and refusals (from `refusedFrom`) no longer apply */
  | { kind: 'consents_cleared'; approvedUpTo: number; refusedFrom: number | null; at: number };

export type EntryLevel = 'ok' | 'soft' | 'hard' | 'unusable';

export interface EntryStatus {
  level: EntryLevel;
  trigger: Trigger | null;
  /** 'not permitted', 'excluded', 'refused' for unusable rungs */
  why: string;
  /** the last time the rung was blocked (Infinity: now; -Infinity: never), for the recovery window */
  blockedUntil: number;
  /** when a hard block should lift (breaker wait, quota reset); null when unknown */
  resumeAt: number | null;
}

/** What the tenant's signals say about one rung, gathered by the engine. */
export interface EntrySignals {
  /** OPEN breakers covering the rung (shared and the tenant's own) */
  openBreakers: HealthBreakerView[];
  /** the last time a breaker covering it left OPEN */
  breakerLeftOpenAt: number | null;
  /** the latest quota exhaustion of its key (`until` may have passed) */
  capacity: { until: number; kind: RateLimitKind; detail: string } | null;
  /** the p95 latency of the tenant's own calls on the rung, where known */
  latency: { p95Ms: number; callsPerMinute: number } | undefined;
}

export interface TrackContext {
  tenantId: string;
  now: number;
  policy: TaskPolicy;
  tenant: DegradationPolicy;
  signals: (entry: TierEntry) => EntrySignals;
  /** the tenant's spend rate (USD per minute over the last 60 s), undefined when unknown */
  costPerMinuteUsd: number | undefined;
  /** price of `to` relative to `from` (1 when unknown) */
  priceRatio: (fromModel: string, toModel: string) => number;
  newId: () => string;
}

interface LatencyState {
  over: boolean;
  overSince: number | null;
  clearedAt: number | null;
}

const NEVER_OVER: Readonly<LatencyState> = Object.freeze({ over: false, overSince: null, clearedAt: null });

export class TierTrack {
  /** index into the ladder; ladder length = off it (suspended or halted) */
  position = 0;
  probing = false;
  probesLeft = 0;
  /** why the tenant is where it is */
  trigger: Trigger | null = null;
  since: number;
  /** tiers up to this one were approved in this incident (0: none) */
  approvedUpTo = 0;
  /** this tier and worse were refused in this incident */
  refusedFrom = Infinity;
  pending: ConsentRequest | null = null;
  recoveryWindowMs: number;
  /** rungs better than this tier are too expensive for the tenant's budget right now */
  costMinTier = 0;
  /** the rung statuses of the latest evaluation */
  statuses: EntryStatus[] = [];
  /** whether the track ever left the primary: until then its decision is a plain ALLOW */
  touched = false;

  #ladderId = '';
  #tiers: readonly TierEntry[] = [];
  #permitted: readonly number[] = [];
  #costOverSince: number | null = null;
  #costClearSince: number | null = null;
  #costTrigger: Trigger | null = null;
  #latency = new Map<string, LatencyState>();
  /** the rung whose probe just failed, until the next evaluation demotes */
  #probeFailure: { index: number; at: number; detail: string } | null = null;
  /** rung index → the last time a probe on it failed */
  #probeFailedAt = new Map<number, number>();
  /** set by restore(): every rung counts as blocked until then */
  #restoredAt: number | null = null;

  constructor(
    readonly task: string,
    now: number,
    recoveryWindowMs: number,
  ) {
    this.since = now;
    this.recoveryWindowMs = recoveryWindowMs;
  }

  /** Whether the track is back at rest: primary, steady, nothing pending or on hold. */
  isAtRest(): boolean {
    return (
      this.position === 0 &&
      !this.probing &&
      this.pending === null &&
      this.costMinTier === 0 &&
      this.#costOverSince === null &&
      [...this.#latency.values()].every((s) => !s.over && s.overSince === null)
    );
  }

  /** The ladder entry the tenant is on (undefined off the ladder). */
  currentEntry(): TierEntry | undefined {
    return this.#tiers[this.position];
  }

  /** Whether the tenant is off the ladder (suspended or halted). */
  isOffLadder(): boolean {
    return this.#tiers.length > 0 && this.position >= this.#tiers.length;
  }

  positionAt(index: number): Position {
    const entry = this.#tiers[index];
    if (entry !== undefined) return { index, tier: entry.tier, provider: entry.provider, model: entry.model };
    return { index: this.#tiers.length, tier: this.#permitted.includes(SUSPEND_TIER) ? SUSPEND_TIER : null, provider: '', model: '' };
  }

  /**
   * A model call of the tenant on ladder rung `entryIndex`: counts probes while probing it.
   * `healthy` is null for outcomes that say nothing about the rung (a 429, the agent's own error).
   */
  onCall(entryIndex: number, healthy: boolean | null, at: number, detail: string): TrackChange[] {
    if (!this.probing || entryIndex !== this.position || healthy === null) return [];
    if (!healthy) {
      this.#probeFailure = { index: entryIndex, at, detail };
      return [];
    }
    this.probesLeft = Math.max(0, this.probesLeft - 1);
    if (this.probesLeft > 0) return [];
    this.probing = false;
    return [{ kind: 'probes_passed', position: this.positionAt(this.position), at }];
  }

  /** Re-grades the ladder and moves if the rules say so. */
  evaluate(ctx: TrackContext): TrackChange[] {
    const { now, policy } = ctx;
    const changes: TrackChange[] = [];
    // Policies are immutable: the same arrays mean the same ladder, without serializing it.
    if (policy.tiers !== this.#tiers || policy.permittedTiers !== this.#permitted) {
      const ladderId = JSON.stringify([policy.tiers, policy.permittedTiers]);
      if (ladderId !== this.#ladderId) changes.push(...this.#ladderChanged(ctx, ladderId));
      this.#tiers = policy.tiers;
      this.#permitted = policy.permittedTiers;
    }
    const tiers = policy.tiers;

    if (!policy.enabled || tiers.length === 0) {
      // No ladder, nothing to move along: back to rest if the policy changed under a degraded tenant.
      if (this.pending !== null) changes.push(this.#withdraw('the policy no longer switches this tenant', now));
      if (this.position !== 0) changes.push(this.#move(ctx, 0, policyTrigger('degradation disabled, or no ladder'), 'policy', false));
      this.statuses = [];
      return changes;
    }

    if (this.pending !== null && now >= this.pending.expiresAt) {
      const request = this.pending;
      this.pending = null;
      this.refusedFrom = Math.min(this.refusedFrom, request.to.tier ?? SUSPEND_TIER);
      changes.push({ kind: 'consent_expired', request, at: now });
    }

    this.#updateCost(ctx);
    const statuses = tiers.map((entry, i) => this.#grade(ctx, entry, i));
    this.statuses = statuses;
    const failure = this.#probeFailure;
    this.#probeFailure = null;
    const current = this.position;
    const desired = this.#desired(statuses, current, tiers.length, now);

    if (desired > current) {
      const cause: TierChangeCause = this.probing ? 'probe_failed' : 'demote';
      const trigger =
        (current < tiers.length ? statuses[current]?.trigger : null) ??
        (failure !== null ? probeTrigger(tiers[failure.index], failure.detail) : null) ??
        policyTrigger('the current tier is not usable');
      if (desired < tiers.length && this.#needsConsent(policy, (tiers[desired] as TierEntry).tier)) {
        changes.push(...this.#ask(ctx, desired, trigger));
        return changes;
      }
      if (this.pending !== null) changes.push(this.#withdraw('a tier that needs no consent is available', now));
      if (cause === 'probe_failed') {
        const { maxWindowMs, windowMultiplier } = ctx.tenant.recovery;
        this.recoveryWindowMs = Math.min(maxWindowMs, Math.round(this.recoveryWindowMs * windowMultiplier));
      }
      changes.push(this.#move(ctx, desired, trigger, cause, false));
      return changes;
    }

    if (desired < current) {
      const trigger = recoveredTrigger(tiers[desired] as TierEntry, this.recoveryWindowMs);
      if (this.#needsConsent(policy, (tiers[desired] as TierEntry).tier)) {
        changes.push(...this.#ask(ctx, desired, trigger));
        return changes;
      }
      if (this.pending !== null) changes.push(this.#withdraw('a better tier recovered', now));
      changes.push(this.#move(ctx, desired, trigger, 'promote', true));
      return changes;
    }

    // Staying: a request raised for a move the conditions no longer call for is withdrawn.
    if (this.pending !== null) changes.push(this.#withdraw('the switch is no longer needed', now));
    if (current === 0 && !this.probing && statuses[0]?.level === 'ok') changes.push(...this.#endIncident(ctx));
    return changes;
  }

  approve(requestId: string, actor: string, now: number): TrackChange[] {
    const request = this.#take(requestId);
    this.approvedUpTo = Math.max(this.approvedUpTo, request.to.tier ?? 0);
    return [{ kind: 'consent_approved', request, actor, at: now }];
  }

  refuse(requestId: string, actor: string, reason: string, now: number): TrackChange[] {
    const request = this.#take(requestId);
    this.refusedFrom = Math.min(this.refusedFrom, request.to.tier ?? SUSPEND_TIER);
    return [{ kind: 'consent_refused', request, actor, reason, at: now }];
  }

  /**
   * Resumes a rung recorded before a restart. Every better rung then has to stay clear for a whole
   * recovery window (and pass its probes) before the tenant goes back up: breakers restart CLOSED,
   * and a restart must not send everyone back to a provider that was failing.
   */
  restore(index: number, trigger: Trigger, now: number): void {
    this.position = index;
    this.trigger = trigger;
    this.since = now;
    this.touched = true;
    this.#restoredAt = now;
  }

  /** Resumes the answers given in the incident before a restart (replayed from the audit log). */
  restoreConsents(approvedUpTo: number, refusedFrom: number): void {
    this.approvedUpTo = approvedUpTo;
    this.refusedFrom = refusedFrom;
  }

  #take(requestId: string): ConsentRequest {
    const request = this.pending;
    if (request === null || request.id !== requestId) throw new Error(`no pending consent request ${requestId}`);
    this.pending = null;
    return request;
  }

  #needsConsent(policy: TaskPolicy, tier: number): boolean {
    return policy.consent.required && tier >= policy.consent.fromTier && tier > this.approvedUpTo;
  }

  #ask(ctx: TrackContext, desired: number, trigger: Trigger): TrackChange[] {
    const { policy, now } = ctx;
    if (this.pending !== null && this.pending.to.index === desired) return [];
    const changes: TrackChange[] = [];
    if (this.pending !== null) changes.push(this.#withdraw('a different tier is now needed', now));
    const request: ConsentRequest = {
      id: ctx.newId(),
      tenantId: ctx.tenantId,
      task: this.task,
      from: this.positionAt(this.position),
      to: this.positionAt(desired),
      trigger,
      requestedAt: now,
      expiresAt: now + policy.consent.timeoutMs,
    };
    this.pending = request;
    changes.push({ kind: 'consent_requested', request });
    return changes;
  }

  #withdraw(reason: string, now: number): TrackChange {
    const request = this.pending as ConsentRequest;
    this.pending = null;
    return { kind: 'consent_withdrawn', request, reason, at: now };
  }

  #move(ctx: TrackContext, to: number, trigger: Trigger, cause: TierChangeCause, probing: boolean): TrackChange {
    const { now } = ctx;
    const from = this.positionAt(this.position);
    if (cause === 'probe_failed' && this.position < this.#tiers.length) this.#probeFailedAt.set(this.position, now);
    this.position = to;
    this.trigger = trigger;
    this.since = now;
    this.probing = probing && to < this.#tiers.length;
    this.probesLeft = this.probing ? ctx.tenant.recovery.probeCalls : 0;
    if (to !== 0 || this.probing) this.touched = true;
    return { kind: 'tier_change', cause, from, to: this.positionAt(to), trigger, at: now, probing: this.probing };
  }

  /** The answers end with their incident; that is recorded, so a restart knows which still hold. */
  #endIncident(ctx: TrackContext): TrackChange[] {
    if (this.approvedUpTo === 0 && this.refusedFrom === Infinity && this.#restoredAt === null && this.#probeFailedAt.size === 0 && this.recoveryWindowMs === ctx.tenant.recovery.windowMs) return [];
    const answered = this.approvedUpTo !== 0 || this.refusedFrom !== Infinity;
    const cleared: TrackChange[] = answered
      ? [{ kind: 'consents_cleared', approvedUpTo: this.approvedUpTo, refusedFrom: this.refusedFrom === Infinity ? null : this.refusedFrom, at: ctx.now }]
      : [];
    this.approvedUpTo = 0;
    this.refusedFrom = Infinity;
    this.recoveryWindowMs = ctx.tenant.recovery.windowMs;
    this.#probeFailedAt.clear();
    this.#restoredAt = null;
    return cleared;
  }

  #ladderChanged(ctx: TrackContext, ladderId: string): TrackChange[] {
    const first = this.#ladderId === '';
    const before = this.#tiers[this.position];
    const wasOff = this.#tiers.length > 0 && this.position >= this.#tiers.length;
    const from = this.positionAt(this.position);
    this.#ladderId = ladderId;
    this.#tiers = ctx.policy.tiers;
    this.#permitted = ctx.policy.permittedTiers;
    this.#probeFailedAt.clear();
    this.#latency.clear();
    if (first) {
      if (this.position > this.#tiers.length) this.position = this.#tiers.length;
      return [];
    }
    // Keep the rung (or the suspension) if the new ladder still has it; otherwise start from the
    // primary and let this evaluation move the tenant where the signals say, audited as usual.
    const changes: TrackChange[] = [];
    if (this.pending !== null) changes.push(this.#withdraw('the ladder changed', ctx.now));
    const kept = before === undefined ? -1 : this.#tiers.findIndex((e) => e.provider === before.provider && e.model === before.model && e.key === before.key);
    const target = kept >= 0 ? kept : wasOff ? this.#tiers.length : 0;
    if (target === this.position && kept >= 0) return changes;
    this.position = target;
    this.probing = false;
    this.probesLeft = 0;
    if (this.touched && target === 0) {
      changes.push({ kind: 'tier_change', cause: 'policy', from, to: this.positionAt(0), trigger: policyTrigger('the ladder changed'), at: ctx.now, probing: false });
    }
    return changes;
  }

  #grade(ctx: TrackContext, entry: TierEntry, index: number): EntryStatus {
    const { policy, now } = ctx;
    if (!policy.permittedTiers.includes(entry.tier)) return unusable('not permitted');
    if (isExcluded(entry, policy.residency)) return unusable('excluded for data residency');
    if (entry.tier > 0 && entry.tier >= this.refusedFrom) return unusable('refused');

    const signals = ctx.signals(entry);
    // hard blocks
    if (signals.openBreakers.length > 0) {
      let resumeAt = 0;
      for (const b of signals.openBreakers) resumeAt = Math.max(resumeAt, b.openUntil ?? 0);
      return { level: 'hard', trigger: breakerTrigger(signals.openBreakers[0] as HealthBreakerView, entry), why: '', blockedUntil: Infinity, resumeAt };
    }
    const capacity = signals.capacity;
    if (capacity !== null && capacity.until > now) {
      return { level: 'hard', trigger: capacityTrigger(entry, capacity), why: '', blockedUntil: Infinity, resumeAt: capacity.until };
    }
    if (this.#probeFailure !== null && this.#probeFailure.index === index) {
      return { level: 'hard', trigger: probeTrigger(entry, this.#probeFailure.detail), why: '', blockedUntil: Infinity, resumeAt: null };
    }

    // soft blocks
    const latency = this.#gradeLatency(ctx, entry, signals.latency);
    if (latency.over) {
      const sla = ctx.tenant.triggers.latencyP95Ms ?? 0;
      const p95 = signals.latency?.p95Ms ?? 0;
      return {
        level: 'soft',
        trigger: {
          kind: 'latency',
          scope: 'MODEL',
          metric: 'latencyP95Ms',
          threshold: sla,
          observed: p95,
          detail: `p95 latency of ${entry.provider}/${entry.model} is ${Math.round(p95)} ms, over the SLA of ${sla} ms`,
          provider: entry.provider,
          model: entry.model,
        },
        why: '',
        blockedUntil: Infinity,
        resumeAt: null,
      };
    }
    if (entry.tier < this.costMinTier) {
      return { level: 'soft', trigger: this.#costTrigger ?? policyTrigger('over budget'), why: '', blockedUntil: Infinity, resumeAt: null };
    }
    // clear: since when, for the recovery window
    const blockedUntil = Math.max(
      signals.breakerLeftOpenAt ?? -Infinity,
      capacity?.until ?? -Infinity,
      this.#probeFailedAt.get(index) ?? -Infinity,
      this.#restoredAt ?? -Infinity,
      latency.clearedAt ?? -Infinity,
    );
    return { level: 'ok', trigger: null, why: '', blockedUntil, resumeAt: null };
  }

  #gradeLatency(ctx: TrackContext, entry: TierEntry, latency: EntrySignals['latency']): LatencyState {
    const { latencyP95Ms: sla, latencyMinCallsPerMinute, holdMs, clearFraction } = ctx.tenant.triggers;
    const key = `${entry.provider}\u0000${entry.model}`;
    let state = this.#latency.get(key);
    if (state === undefined) {
      if (sla === undefined) return NEVER_OVER; // no SLA, nothing to remember
      this.#latency.set(key, (state = { over: false, overSince: null, clearedAt: null }));
    }
    if (sla === undefined) {
      if (state.over) state.clearedAt = ctx.now;
      state.over = false;
      state.overSince = null;
      return state;
    }
    // Too few calls say nothing either way: the state holds.
    if (latency === undefined || latency.callsPerMinute < latencyMinCallsPerMinute) return state;
    if (latency.p95Ms > sla) {
      state.overSince ??= ctx.now;
      if (!state.over && ctx.now - state.overSince >= holdMs) state.over = true;
    } else {
      state.overSince = null;
      if (state.over && latency.p95Ms <= sla * clearFraction) {
        state.over = false;
        state.clearedAt = ctx.now;
      }
    }
    return state;
  }

  #updateCost(ctx: TrackContext): void {
    const { now, policy } = ctx;
    const { costPerMinuteUsd: budget, holdMs, clearFraction } = ctx.tenant.triggers;
    const rate = ctx.costPerMinuteUsd;
    if (budget === undefined) {
      this.costMinTier = 0;
      this.#costOverSince = null;
      this.#costClearSince = null;
      return;
    }
    if (rate === undefined || !Number.isFinite(rate)) return;
    const current = policy.tiers[this.position];
    if (rate > budget) {
      this.#costClearSince = null;
      this.#costOverSince ??= now;
      // The next rung that costs less than the current one: a tier at the same price saves nothing.
      const cheaper = current === undefined ? undefined : policy.tiers.find((e, i) => i > this.position && e.tier > current.tier && ctx.priceRatio(current.model, e.model) < 1);
      if (current !== undefined && cheaper !== undefined && now - this.#costOverSince >= holdMs && cheaper.tier > this.costMinTier) {
        this.costMinTier = cheaper.tier;
        // A further step down needs the overspend to hold again at the new tier.
        this.#costOverSince = null;
        this.#costTrigger = {
          kind: 'cost',
          scope: 'TENANT',
          metric: 'costPerMinuteUsd',
          threshold: budget,
          observed: rate,
          detail: `spend of ${Number(rate.toFixed(4))} USD/min is over the budget of ${budget} USD/min`,
          provider: current.provider,
          model: current.model,
        };
      }
      return;
    }
    this.#costOverSince = null;
    if (this.costMinTier === 0) return;
    // Relax one step only when the better tier's projected spend (scaled by the price ratio) stays
    // under the clearing level for a whole recovery window.
    const better = [...policy.tiers].reverse().find((e) => e.tier < this.costMinTier);
    const projected = current !== undefined && better !== undefined ? rate * ctx.priceRatio(current.model, better.model) : rate;
    if (projected > budget * clearFraction) {
      this.#costClearSince = null;
      return;
    }
    this.#costClearSince ??= now;
    if (now - this.#costClearSince >= this.recoveryWindowMs) {
      this.costMinTier = better?.tier ?? 0;
      this.#costClearSince = null;
    }
  }

  /**
   * The best rung to be on: the first `ok` one, where a rung better than the current one counts
   * only once it has been clear for the recovery window; else the current rung if it is merely
   * `soft`; else the first `soft` one; else off the ladder.
   */
  #desired(statuses: readonly EntryStatus[], current: number, offLadder: number, now: number): number {
    const firstOk = statuses.findIndex((s, i) => s.level === 'ok' && (i >= current || now - s.blockedUntil >= this.recoveryWindowMs));
    if (firstOk >= 0) return firstOk;
    if (current < offLadder && statuses[current]?.level === 'soft') return current;
    const firstSoft = statuses.findIndex((s) => s.level === 'soft');
    return firstSoft >= 0 ? firstSoft : offLadder;
  }
}

/** A shared breaker's trigger names how many tenants were over its thresholds, never the fleet's call figures. */
function breakerTrigger(breaker: HealthBreakerView, entry: TierEntry): Trigger {
  const { key, rates } = breaker;
  const slow = rates.slowCallRate > rates.failureRate;
  const shared = key.tenantId === '';
  const whose = shared ? 'shared' : "the tenant's own";
  const what = key.scope === 'MODEL' ? `${key.provider}/${key.model}` : key.provider;
  return {
    kind: key.scope === 'MODEL' ? 'model_breaker' : 'provider_breaker',
    scope: key.scope,
    metric: shared ? 'failingTenants' : slow ? 'slowCallRate' : 'failureRate',
    threshold: 0,
    observed: shared ? breaker.trippedBy : slow ? rates.slowCallRate : rates.failureRate,
    detail: `${whose} ${key.scope === 'MODEL' ? 'model' : 'provider'} breaker of ${what} is OPEN`,
    provider: entry.provider,
    model: entry.model,
  };
}

function capacityTrigger(entry: TierEntry, capacity: NonNullable<EntrySignals['capacity']>): Trigger {
  return {
    kind: 'capacity',
    scope: 'PROVIDER',
    metric: `quota.${capacity.kind}`,
    threshold: 0,
    observed: 0,
    detail: `quota of ${entry.key ?? entry.provider} exhausted (${capacity.detail}) until ${new Date(capacity.until).toISOString()}`,
    provider: entry.provider,
    model: entry.model,
  };
}

function probeTrigger(entry: TierEntry | undefined, detail: string): Trigger {
  return {
    kind: 'probe_failed',
    scope: 'MODEL',
    metric: 'probe',
    threshold: 0,
    observed: 1,
    detail: `a probe call on ${entry ? `${entry.provider}/${entry.model}` : 'the promoted tier'} failed (${detail})`,
    provider: entry?.provider ?? '',
    model: entry?.model ?? '',
  };
}

function recoveredTrigger(entry: TierEntry, windowMs: number): Trigger {
  return {
    kind: 'recovered',
    scope: 'MODEL',
    metric: 'recoveryWindowMs',
    threshold: windowMs,
    observed: windowMs,
    detail: `${entry.provider}/${entry.model} clear for the recovery window of ${windowMs} ms; probing`,
    provider: entry.provider,
    model: entry.model,
  };
}

function unusable(why: string): EntryStatus {
  return { level: 'unusable', trigger: null, why, blockedUntil: Infinity, resumeAt: null };
}

export function policyTrigger(detail: string): Trigger {
  return { kind: 'policy', scope: 'TENANT', metric: '', threshold: 0, observed: 0, detail, provider: '', model: '' };
}
