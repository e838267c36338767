// Which audited events are worth waking someone for, and what a webhook receiver is sent about
// one. The event itself is the breakerEvents subscription's (breakerEventView), so both carry the
// same fields for the same event.

import type { AuditEvent } from '../audit/audit-event.js';
import { breakerEventView, type BreakerEventView } from '../decisions/breaker-event-view.js';

export const NOTIFICATION_TYPES = ['trip', 'escalation', 'consent_request', 'tier_change'] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

const TRIPPED_STATES = new Set(['OPEN', 'FORCED_OPEN']);

/** The notification an audited event is, or undefined when it is none (a breaker closing, an answer). */
export function notificationTypeOf(event: AuditEvent): NotificationType | undefined {
  switch (event.kind) {
    case 'breaker_transition':
    case 'operator_action':
      return TRIPPED_STATES.has(event.newState) && event.oldState !== event.newState ? 'trip' : undefined;
    case 'escalation':
      return 'escalation';
    case 'degradation': {
      const detail = detailEvent(event.details);
      if (detail === 'consent_requested') return 'consent_request';
      if (detail === 'tier_change') return 'tier_change';
      return undefined;
    }
    default:
      return undefined;
  }
}

function detailEvent(details: string): unknown {
  try {
    return (JSON.parse(details) as { event?: unknown } | null)?.event;
  } catch {
    return undefined;
  }
}

export interface Notification {
  /** `<tenant>/<audit seq>`: the same for every attempt and after a restart, so receivers can dedupe */
  id: string;
  type: NotificationType;
  tenantId: string;
  /** ISO-8601, as the subscription's DateTime serializes it */
  time: string;
  event: Omit<BreakerEventView, 'time'> & { time: string };
}

export function notificationOf(event: AuditEvent, type: NotificationType): Notification {
  const view = breakerEventView(event);
  const time = new Date(view.time).toISOString();
  return { id: `${event.tenantId}/${event.seq}`, type, tenantId: event.tenantId, time, event: { ...view, time } };
}

const HEADLINES: Record<NotificationType, string> = {
  trip: 'breaker tripped',
  escalation: 'escalation: needs a human',
  consent_request: 'consent requested',
  tier_change: 'degradation tier changed',
};

/** Slack's incoming-webhook payload: one readable line. */
export function slackPayload(n: Notification): { text: string } {
  const { event } = n;
  const where = event.runId === null ? `tenant ${n.tenantId}` : `tenant ${n.tenantId}, run ${event.runId}`;
  const states = event.oldState === event.newState ? event.newState : `${event.oldState} → ${event.newState}`;
  return { text: `Breakwater: ${HEADLINES[n.type]} (${where}, ${event.scope} ${states}): ${event.reason}` };
}
