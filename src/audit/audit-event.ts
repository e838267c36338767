import { createHash } from 'node:crypto';

export const AUDIT_KINDS = ['breaker_transition', 'policy_change', 'operator_action', 'degradation', 'escalation', 'escalation_ack', 'audit_integrity'] as const;

/** The audit chain of what is not one tenant's: tier-wide changes, file reloads, the checkpoint chain. */
export const PLATFORM_AUDIT_TENANT = '*';
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** What a caller records; the log adds Seq, PrevHash and Hash. */
export interface AuditEventInput {
  tenantId: string;
  kind: AuditKind;
  /** ms since the epoch; the log's clock when absent */
  eventTime?: number;
  runId?: string;
  /** a decision scope (TENANT, RUN, PROVIDER, MODEL), or '' */
  scope?: string;
  metric?: string;
  threshold?: number;
  observed?: number;
  oldState?: string;
  newState?: string;
  actor?: string;
  reason?: string;
  /** a JSON-serializable value, or a JSON text */
  details?: unknown;
}

/** One stored event of a tenant's hash chain. */
export interface AuditEvent {
  tenantId: string;
  /** 1, 2, 3… per tenant, no gaps */
  seq: number;
  /** ms since the epoch (stored as DateTime64(3, 'UTC')) */
  eventTime: number;
  kind: AuditKind;
  runId: string;
  scope: string;
  metric: string;
  threshold: number;
  observed: number;
  oldState: string;
  newState: string;
  actor: string;
  reason: string;
  /** JSON text */
  details: string;
  /** Hash of the tenant's previous event; '' for Seq 1 */
  prevHash: string;
  hash: string;
}

export type UnhashedAuditEvent = Omit<AuditEvent, 'prevHash' | 'hash'>;

/** The latest link of a tenant's chain: Seq 0 and '' before the first event. */
export interface ChainHead {
  seq: number;
  hash: string;
}

export const GENESIS_HEAD: ChainHead = Object.freeze({ seq: 0, hash: '' });

/**
 * The hashed form of an event: every field but the hashes, in this fixed order, as JSON. The order
 * is part of the format: an outside verifier recomputes it from the stored columns alone.
 */
export function canonicalEventJson(event: UnhashedAuditEvent): string {
  return JSON.stringify({
    tenantId: event.tenantId,
    seq: event.seq,
    eventTime: event.eventTime,
    kind: event.kind,
    runId: event.runId,
    scope: event.scope,
    metric: event.metric,
    threshold: event.threshold,
    observed: event.observed,
    oldState: event.oldState,
    newState: event.newState,
    actor: event.actor,
    reason: event.reason,
    details: event.details,
  });
}

/** sha256 hex of PrevHash + '\n' + canonical JSON. */
export function eventHash(prevHash: string, event: UnhashedAuditEvent): string {
  return createHash('sha256').update(`${prevHash}\n${canonicalEventJson(event)}`).digest('hex');
}

/** The next link after `head`: validates the input, fills defaults and hashes it. */
export function chainEvent(input: AuditEventInput, head: ChainHead, nowMs: number): AuditEvent {
  if (typeof input.tenantId !== 'string' || input.tenantId === '') throw new TypeError('audit event needs a tenantId');
  if (!(AUDIT_KINDS as readonly string[]).includes(input.kind)) throw new TypeError(`unknown audit event kind ${String(input.kind)}`);
  const unhashed: UnhashedAuditEvent = {
    tenantId: wellFormed(input.tenantId),
    seq: head.seq + 1,
    eventTime: Math.floor(finite('eventTime', input.eventTime ?? nowMs)),
    kind: input.kind,
    runId: wellFormed(input.runId ?? ''),
    scope: wellFormed(input.scope ?? ''),
    metric: wellFormed(input.metric ?? ''),
    // -0 is stored and read back as 0; normalize so the hash never depends on the sign of zero.
    threshold: finite('threshold', input.threshold ?? 0) + 0,
    observed: finite('observed', input.observed ?? 0) + 0,
    oldState: wellFormed(input.oldState ?? ''),
    newState: wellFormed(input.newState ?? ''),
    actor: wellFormed(input.actor ?? ''),
    reason: wellFormed(input.reason ?? ''),
    details: detailsJson(input.details),
  };
  return { ...unhashed, prevHash: head.hash, hash: eventHash(head.hash, unhashed) };
}

function detailsJson(details: unknown): string {
  if (details === undefined) return '{}';
  if (typeof details === 'string') {
    try {
      JSON.parse(details);
    } catch {
      throw new TypeError('audit event details must be JSON text');
    }
    return wellFormed(details);
  }
  const text = JSON.stringify(details);
  if (text === undefined) throw new TypeError('audit event details are not JSON-serializable');
  return wellFormed(text);
}

function finite(field: string, value: number): number {
  // NaN and Infinity have no JSON form, so they could not be hashed the way they are stored.
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`audit event ${field} must be a finite number, got ${value}`);
  return value;
}

/**
 * Lone surrogates cannot survive the trip through UTF-8 storage unchanged, which would break the
 * hash of an honest event; replace them before hashing, as storage would.
 */
function wellFormed(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}
