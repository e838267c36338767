// Audit events of the degradation path (kind 'degradation' in the tenant's hash-chained log):
// every tier change with its time, trigger, source and target model and the state of the tenant's
// runs; every consent request and its answer; the confirmation that probes passed. Provider and
// model breaker transitions are recorded as 'breaker_transition' with scope PROVIDER or MODEL; their
// snapshot sits under `healthBreaker` (not `breaker`), so the tenant/run breaker restore skips them.

import type { AuditEventInput } from '../audit/audit-event.js';
import { SYSTEM_ACTOR } from '../breakers/circuit-breaker.js';
import type { Decision } from '../contracts/decision.js';
import type { HealthBreakerView, HealthTransition } from './health-breaker.js';
import type { ConsentRequest, Position, TrackChange } from './tier-track.js';

/** One of the tenant's runs at the time of the event. */
export interface RunState {
  runId: string;
  task: string;
  lastSeenMs: number;
  provider: string;
  model: string;
  calls: number;
  /** the run's rolling metrics, when the windows still hold it */
  metrics?: Readonly<Record<string, number>>;
}

export interface EventContext {
  tenantId: string;
  task: string;
  notify: boolean;
  /** the decision the change produced, as published */
  decision?: Decision | undefined;
  runs: RunState[];
  activeRuns: number;
}

/** 'TIER_0' … 'TIER_3', 'SUSPENDED', 'HALTED'. */
export function positionState(position: Position): string {
  if (position.tier === null) return 'HALTED';
  if (position.tier === 4) return 'SUSPENDED';
  return `TIER_${position.tier}`;
}

function describePosition(position: Position): string {
  if (position.tier === null) return 'halted';
  if (position.tier === 4) return 'suspended';
  return `tier ${position.tier} (${position.provider}/${position.model})`;
}

function positionDetails(position: Position): Record<string, unknown> {
  return { tier: position.tier, provider: position.provider, model: position.model };
}

function requestDetails(request: ConsentRequest): Record<string, unknown> {
  return {
    id: request.id,
    task: request.task,
    from: positionDetails(request.from),
    to: positionDetails(request.to),
    trigger: request.trigger,
    requestedAt: new Date(request.requestedAt).toISOString(),
    expiresAt: new Date(request.expiresAt).toISOString(),
  };
}

export function degradationEvent(change: TrackChange, ctx: EventContext): AuditEventInput {
  const common = {
    tenantId: ctx.tenantId,
    kind: 'degradation' as const,
    runId: '',
  };
  const shared = { task: ctx.task, notify: ctx.notify, runs: ctx.runs, activeRuns: ctx.activeRuns, ...(ctx.decision ? { decision: ctx.decision } : {}) };
  switch (change.kind) {
    case 'tier_change': {
      const { trigger } = change;
      const verb =
        change.cause === 'promote' ? 'promoted' : change.cause === 'probe_failed' ? 'demoted again (a probe failed)' : change.cause === 'policy' ? 'moved by a policy change' : change.cause === 'restored' ? 'restored' : 'degraded';
      return {
        ...common,
        eventTime: change.at,
        scope: trigger.scope,
        metric: trigger.metric,
        threshold: trigger.threshold,
        observed: trigger.observed,
        oldState: positionState(change.from),
        newState: positionState(change.to),
        actor: SYSTEM_ACTOR,
        reason: `${verb} from ${describePosition(change.from)} to ${describePosition(change.to)}${change.probing ? ', probing' : ''}: ${trigger.detail}`,
        details: {
          event: 'tier_change',
          cause: change.cause,
          from: positionDetails(change.from),
          to: positionDetails(change.to),
          degraded: change.to.tier !== 0,
          probing: change.probing,
          trigger,
          ...shared,
        },
      };
    }
    case 'probes_passed':
      return {
        ...common,
        eventTime: change.at,
        scope: 'MODEL',
        metric: 'probe',
        oldState: positionState(change.position),
        newState: positionState(change.position),
        actor: SYSTEM_ACTOR,
        reason: `probe calls on ${describePosition(change.position)} passed: promotion confirmed`,
        details: { event: 'probes_passed', position: positionDetails(change.position), ...shared },
      };
    case 'consent_requested':
      return {
        ...common,
        eventTime: change.request.requestedAt,
        scope: change.request.trigger.scope,
        metric: change.request.trigger.metric,
        threshold: change.request.trigger.threshold,
        observed: change.request.trigger.observed,
        oldState: positionState(change.request.from),
        newState: 'CONSENT_PENDING',
        actor: SYSTEM_ACTOR,
        reason: `switching from ${describePosition(change.request.from)} to ${describePosition(change.request.to)} needs approval (request ${change.request.id}): ${change.request.trigger.detail}`,
        details: { event: 'consent_requested', request: requestDetails(change.request), ...shared },
      };
    case 'consents_cleared': {
      const answers = [
        ...(change.approvedUpTo > 0 ? [`the approval of tiers up to ${change.approvedUpTo}`] : []),
        ...(change.refusedFrom !== null ? [`the refusal of tier ${change.refusedFrom} and worse`] : []),
      ];
      return {
        ...common,
        eventTime: change.at,
        scope: 'TENANT',
        metric: 'consent',
        oldState: 'CONSENT_ANSWERED',
        newState: 'CONSENT_RESET',
        actor: SYSTEM_ACTOR,
        reason: `the incident is over (the primary is healthy): ${answers.join(' and ')} no longer ${answers.length > 1 ? 'apply' : 'applies'}; the next incident asks again`,
        details: { event: 'consents_cleared', approvedUpTo: change.approvedUpTo, refusedFrom: change.refusedFrom, ...shared },
      };
    }
    case 'consent_approved':
    case 'consent_refused':
    case 'consent_expired':
    case 'consent_withdrawn': {
      const { request } = change;
      const newState = { consent_approved: 'CONSENT_APPROVED', consent_refused: 'CONSENT_REFUSED', consent_expired: 'CONSENT_EXPIRED', consent_withdrawn: 'CONSENT_WITHDRAWN' }[change.kind];
      const actor = change.kind === 'consent_approved' || change.kind === 'consent_refused' ? change.actor : SYSTEM_ACTOR;
      const why =
        change.kind === 'consent_approved'
          ? `approved by ${change.actor}`
          : change.kind === 'consent_refused'
            ? `refused by ${change.actor}${change.reason ? `: ${change.reason}` : ''}`
            : change.kind === 'consent_expired'
              ? 'not answered in time: refused'
              : `withdrawn: ${change.reason}`;
      return {
        ...common,
        eventTime: change.at,
        scope: request.trigger.scope,
        metric: request.trigger.metric,
        oldState: 'CONSENT_PENDING',
        newState,
        actor,
        reason: `switch to ${describePosition(request.to)} (request ${request.id}) ${why}`,
        details: { event: change.kind, request: requestDetails(request), ...shared },
      };
    }
  }
}

/**
 * A provider or model breaker transition, for the log of a tenant it concerns. A shared breaker's
 * figures are every tenant's calls, so its event carries only how many tenants were over the
 * thresholds (metric `failingTenants`), never call counts or rates.
 */
export function healthTransitionEvent(tenantId: string, transition: HealthTransition, view?: HealthBreakerView): AuditEventInput {
  const { key, rates } = transition;
  const slow = transition.cause === 'slow_call_rate';
  const shared = key.tenantId === '';
  return {
    tenantId,
    kind: 'breaker_transition',
    eventTime: transition.at,
    runId: '',
    scope: key.scope,
    metric: shared ? 'failingTenants' : slow ? 'slowCallRate' : 'failureRate',
    observed: shared ? rates.failingTenants : slow ? rates.slowCallRate : rates.failureRate,
    oldState: transition.from,
    newState: transition.to,
    actor: SYSTEM_ACTOR,
    reason: transition.reason,
    details: {
      event: 'health_transition',
      cause: transition.cause,
      provider: key.provider,
      model: key.model,
      shared,
      rates: shared ? { failingTenants: rates.failingTenants } : rates,
      waitMs: transition.waitMs,
      ...(view === undefined ? {} : { healthBreaker: shared ? sharedView(view) : view }),
    },
  };
}

/** A shared breaker as any one tenant may see it: its state and times, no figures of the calls. */
export function sharedView(view: HealthBreakerView): Record<string, unknown> {
  return { key: view.key, state: view.state, trippedBy: view.trippedBy, openedAt: view.openedAt, openUntil: view.openUntil, leftOpenAt: view.leftOpenAt, reopens: view.reopens };
}
