// What a breakerEvents subscriber and a webhook receiver are told about an audited event: one
// definition, so the two never disagree about the same event.

import type { AuditEvent } from '../audit/audit-event.js';

export interface BreakerEventView {
  tenantId: string;
  runId: string | null;
  scope: string;
  oldState: string;
  newState: string;
  metric: string;
  threshold: number;
  observed: number;
  reason: string;
  actor: string;
  /** ms since the epoch */
  time: number;
  kind: string;
  /** the audit event's own JSON (a tier change's cause, from, to, trigger, probing) */
  details: unknown;
}

export function breakerEventView(event: AuditEvent): BreakerEventView {
  return {
    tenantId: event.tenantId,
    runId: event.runId || null,
    scope: event.scope || 'TENANT',
    oldState: event.oldState || 'CLOSED',
    newState: event.newState || 'CLOSED',
    metric: event.metric,
    threshold: event.threshold,
    observed: event.observed,
    reason: event.reason,
    actor: event.actor,
    time: event.eventTime,
    kind: event.kind,
    details: detailsOf(event.details),
  };
}

/** Details as an object, whether the event carries them parsed or as the stored JSON text. */
function detailsOf(details: unknown): unknown {
  if (typeof details !== 'string') return details ?? null;
  try {
    return JSON.parse(details) as unknown;
  } catch {
    return details;
  }
}
