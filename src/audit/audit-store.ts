import type { Checkpoint } from './audit-checkpoint.js';
import type { AuditEvent, AuditKind, ChainHead } from './audit-event.js';

export interface AuditListQuery {
  /** ms since the epoch, inclusive */
  from?: number;
  /** ms since the epoch, exclusive */
  to?: number;
  /** default 100, at most 10 000 */
  limit?: number;
  kinds?: readonly AuditKind[];
  runId?: string;
  /** cursor for the next page of a newest-first listing */
  beforeSeq?: number;
  /** newest first unless 'asc' */
  order?: 'asc' | 'desc';
}

/** The newest state of one breaker, as the audit event that set it recorded it. */
export interface BreakerStateRow {
  tenantId: string;
  scope: string;
  runId: string;
  state: string;
  /** the breaker snapshot as JSON text */
  snapshot: string;
  /** the audit event that set it */
  seq: number;
  updatedAt: number;
}

/** What escalation needs from the audit history after a restart. */
export interface TripHistory {
  /** each tenant's breaker trips (OPEN transitions) since the cutoff and since its last acknowledgement, epoch ms, oldest first */
  trips: Map<string, number[]>;
  /** tenants whose newest escalation no one has acknowledged */
  escalated: string[];
}

/** One flush of the audit writer: its events in chain order, and what they imply. */
export interface AuditBatch {
  events: readonly AuditEvent[];
  /** the newest link of each tenant in `events` */
  heads: ReadonlyMap<string, ChainHead & { eventTime: number }>;
  breakerStates: readonly BreakerStateRow[];
}

/**
 * Where the audit log keeps its events, chain heads and current breaker states. One
 * implementation per storage engine; the log itself never writes SQL.
 */
export interface AuditStore {
  /** every tenant's chain head: the further of its newest stored event and its recorded head */
  heads(): Promise<Map<string, ChainHead>>;
  /** the highest stored Seq of each of `tenantIds` (absent: none stored) */
  storedSeqs(tenantIds: readonly string[]): Promise<Map<string, number>>;
  /** events first, then heads and breaker states: a head never points past stored events */
  write(batch: AuditBatch): Promise<void>;
  list(tenantId: string, query: AuditListQuery): Promise<AuditEvent[]>;
  /** a page of the tenant's chain in (Seq, Hash) order, after the given position */
  chainPage(tenantId: string, after: { seq: number; hash: string } | null, limit: number): Promise<AuditEvent[]>;
  recordedHead(tenantId: string): Promise<ChainHead | null>;
  /** the stored events at these positions (absent: not stored) */
  eventsAt(positions: readonly { tenantId: string; seq: number }[]): Promise<AuditEvent[]>;
  /** every stored checkpoint, in Seq order */
  checkpoints(): Promise<Checkpoint[]>;
  writeCheckpoint(checkpoint: Checkpoint): Promise<void>;
  /** breakers whose newest recorded state is not CLOSED */
  openBreakers(): Promise<BreakerStateRow[]>;
  tripHistory(sinceMs: number): Promise<TripHistory>;
  /** forgets breakers CLOSED since before `beforeMs` (every version of each); returns how many */
  pruneClosedBreakers(beforeMs: number): Promise<number>;
}
