// The consent answers a restart must not forget, rebuilt from the tenant's audit log: within an
// incident, a tier approved is not asked for again and a tier refused is not offered again
// (tier-track.ts). Every answer is an audit event, and so is the end of the incident that voids
// them ('consents_cleared'), so replaying a tenant's events in order gives the answers that hold.

import type { ClickHouseClient } from '@clickhouse/client';
import { queryRows } from '../storage/clickhouse.js';
import { SUSPEND_TIER, type TierEntry } from './degradation-schema.js';
import type { ConsentRequest, Position, Trigger } from './tier-track.js';

/** A consent request as its audit event records it (degradation-events.ts, requestDetails). */
export interface RecordedRequest {
  id: string;
  task: string;
  from: RecordedPosition;
  to: RecordedPosition;
  trigger: Record<string, unknown>;
  requestedAt: string;
  expiresAt: string;
}

export interface RecordedPosition {
  tier: number | null;
  provider: string;
  model: string;
}

/** What holds for one tenant and task at the end of its log. */
export interface ConsentAnswers {
  tenantId: string;
  /** '' = the tenant's default track */
  task: string;
  /** tiers up to this one were approved in the current incident (0: none) */
  approvedUpTo: number;
  /** this tier and worse were refused in the current incident (Infinity: none) */
  refusedFrom: number;
  /** a request nobody answered, withdrew or let expire */
  pending: RecordedRequest | null;
}

const CONSENT_EVENTS = ['consent_requested', 'consent_approved', 'consent_refused', 'consent_expired', 'consent_withdrawn', 'consents_cleared'];

/** The consent events of the degradation log since `sinceMs`, per tenant in log order. */
export async function readConsentEvents(client: ClickHouseClient, sinceMs: number): Promise<Array<{ TenantId: string; Details: string }>> {
  return queryRows<{ TenantId: string; Details: string }>(
    client,
    `SELECT TenantId, Details FROM audit_events
     WHERE Kind = 'degradation' AND JSONExtractString(Details, 'event') IN (${CONSENT_EVENTS.map((e) => `'${e}'`).join(', ')})
       AND EventTime >= fromUnixTimestamp64Milli({sinceMs:Int64}, 'UTC')
     ORDER BY TenantId, Seq`,
    { sinceMs: Math.floor(sinceMs) },
  );
}

/**
 * Replays the events (per tenant in log order) into the answers that still hold, for the tracks
 * that have any. Rows that do not parse are skipped: losing an answer only means asking again.
 */
export function replayConsents(rows: ReadonlyArray<{ TenantId: string; Details: string }>): ConsentAnswers[] {
  const answers = new Map<string, ConsentAnswers>();
  for (const row of rows) {
    let details: { event?: unknown; task?: unknown; request?: RecordedRequest };
    try {
      details = JSON.parse(row.Details) as typeof details;
    } catch {
      continue;
    }
    const task = typeof details.task === 'string' ? details.task : '';
    const key = `${row.TenantId}\u0000${task}`;
    let a = answers.get(key);
    if (a === undefined) answers.set(key, (a = { tenantId: row.TenantId, task, approvedUpTo: 0, refusedFrom: Infinity, pending: null }));
    const toTier = details.request?.to?.tier;
    switch (details.event) {
      case 'consent_requested':
        a.pending = details.request ?? null;
        break;
      case 'consent_approved':
        a.approvedUpTo = Math.max(a.approvedUpTo, toTier ?? 0);
        a.pending = null;
        break;
      case 'consent_refused':
      case 'consent_expired':
        a.refusedFrom = Math.min(a.refusedFrom, toTier ?? SUSPEND_TIER);
        a.pending = null;
        break;
      case 'consent_withdrawn':
        a.pending = null;
        break;
      case 'consents_cleared':
        a.approvedUpTo = 0;
        a.refusedFrom = Infinity;
        break;
    }
  }
  return [...answers.values()].filter((a) => a.approvedUpTo !== 0 || a.refusedFrom !== Infinity || a.pending !== null);
}

/** Where a recorded position sits on the ladder as it is now (its length: off it; -1: gone from it). */
export function ladderIndex(position: RecordedPosition, tiers: readonly TierEntry[]): number {
  if (position.tier === SUSPEND_TIER || position.tier === null) return tiers.length;
  return tiers.findIndex((e) => e.provider === position.provider && e.model === position.model);
}

/** A recorded request as the track's own, for the event that closes it. */
export function consentRequest(tenantId: string, recorded: RecordedRequest, tiers: readonly TierEntry[]): ConsentRequest {
  const position = (p: RecordedPosition): Position => ({ index: ladderIndex(p, tiers), tier: p.tier, provider: p.provider, model: p.model });
  return {
    id: recorded.id,
    tenantId,
    task: recorded.task,
    from: position(recorded.from),
    to: position(recorded.to),
    trigger: recorded.trigger as unknown as Trigger,
    requestedAt: Date.parse(recorded.requestedAt),
    expiresAt: Date.parse(recorded.expiresAt),
  };
}
