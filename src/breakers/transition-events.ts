import type { AuditEventInput } from '../audit/audit-event.js';
import { SYSTEM_ACTOR, type BreakerTransition } from './circuit-breaker.js';
import type { Decision } from '../contracts/decision.js';

/**
 * The audit event for a breaker transition. Details carry the breaker snapshot under `breaker`
 * (what the audit log keeps in breaker_state, read back after a restart) and, when given, the decision
 * the transition produced, so a post-incident report shows exactly what the agent was told.
 */
export function breakerTransitionEvent(transition: BreakerTransition, decision?: Decision): AuditEventInput {
  return {
    tenantId: transition.key.tenantId,
    kind: transition.actor === SYSTEM_ACTOR ? 'breaker_transition' : 'operator_action',
    eventTime: transition.at,
    runId: transition.key.runId ?? '',
    scope: transition.key.scope,
    metric: transition.crossing?.metric ?? '',
    threshold: transition.crossing?.threshold ?? 0,
    observed: transition.crossing?.observed ?? 0,
    oldState: transition.from,
    newState: transition.to,
    actor: transition.actor,
    reason: transition.reason,
    details: {
      cause: transition.cause,
      breaker: transition.snapshot,
      ...(decision === undefined ? {} : { decision }),
    },
  };
}
