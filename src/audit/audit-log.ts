import type { ClickHouseClient } from '@clickhouse/client';
import { queryRows } from '../storage/clickhouse.js';
import { ChainVerifier, type ChainVerification } from './audit-chain.js';
import {
  chainEvent,
  GENESIS_HEAD,
  type AuditEvent,
  type AuditEventInput,
  type AuditKind,
  type ChainHead,
} from './audit-event.js';
import { parseBreakerKey, parseBreakerSnapshot, type BreakerKey, type BreakerSnapshot } from '../breakers/breaker-snapshot.js';

/** The event was stored and chained, but its head was not: verify reports it until the next append. */
export class AuditHeadWriteError extends Error {
  constructor(
    readonly event: AuditEvent,
    cause: unknown,
  ) {
    super(`audit event ${event.tenantId}#${event.seq} was recorded but its head was not: ${String(cause)}`, { cause });
    this.name = 'AuditHeadWriteError';
  }
}

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

/** An OPEN (or forced open, half-open, disabled) breaker as the audit log last recorded it. */
export interface RestoredBreaker {
  key: BreakerKey;
  snapshot: BreakerSnapshot;
  /** the audit event it was read from */
  seq: number;
}

/** Event kinds whose Details may carry a breaker snapshot under `breaker`. */
const SNAPSHOT_KINDS: readonly AuditKind[] = ['breaker_transition', 'operator_action'];
const VERIFY_PAGE = 5_000;
const MAX_LIST = 10_000;

// No alias may shadow a column: WHERE and ORDER BY would then compare the alias (a string Seq sorts
// "10" before "9"). 64-bit integers arrive as JSON strings or numbers, and Number() takes both.
const EVENT_COLUMNS = `TenantId, Seq, toUnixTimestamp64Milli(EventTime) AS EventTimeMs, Kind,
  RunId, Scope, Metric, Threshold, Observed, OldState, NewState, Actor, Reason, Details, PrevHash, Hash`;

interface EventRow {
  TenantId: string;
  Seq: string | number;
  EventTimeMs: string | number;
  Kind: string;
  RunId: string;
  Scope: string;
  Metric: string;
  Threshold: number | string;
  Observed: number | string;
  OldState: string;
  NewState: string;
  Actor: string;
  Reason: string;
  Details: string;
  PrevHash: string;
  Hash: string;
}

/**
 * The tenant-chained, append-only audit log in ClickHouse.
 *
 * Appends for one tenant run one after another (a promise chain per tenant), so concurrent callers
 * never fork the chain; tenants do not wait for each other. The head of each tenant's chain is read
 * from ClickHouse on first use, so a restarted process continues the chain where it ended.
 * One AuditLog per tenant-owning process: two writers for the same tenant would fork its chain.
 */
export class AuditLog {
  #heads = new Map<string, ChainHead>();
  #tails = new Map<string, Promise<void>>();

  readonly #verifyPageSize: number;

  constructor(
    private readonly client: ClickHouseClient,
    private readonly now: () => number = Date.now,
    options: { verifyPageSize?: number } = {},
  ) {
    this.#verifyPageSize = Math.max(1, Math.floor(options.verifyPageSize ?? VERIFY_PAGE));
  }

  append(input: AuditEventInput): Promise<AuditEvent> {
    return this.#serialized(input.tenantId, () => this.#append(input));
  }

  /**
   * Resolves once every append queued so far, and any queued while waiting, has ended (written or
   * failed): shutdown calls it before closing the store, so no audit event is cut off.
   */
  async drain(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all(this.#tails.values());
  }

  /**
   * Recomputes the tenant's chain from ClickHouse and compares its end with the recorded head.
   * It waits for appends already queued for the tenant, so it never sees one half-written.
   */
  verify(tenantId: string): Promise<ChainVerification> {
    return this.#serialized(tenantId, () => this.#verify(tenantId));
  }

  /** A tenant's events, filtered; every value is a bound parameter. */
  async list(tenantId: string, query: AuditListQuery = {}): Promise<AuditEvent[]> {
    const where = ['TenantId = {tenantId:String}'];
    const params: Record<string, unknown> = { tenantId };
    if (query.from !== undefined) {
      where.push("EventTime >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')");
      params.fromMs = Math.floor(query.from);
    }
    if (query.to !== undefined) {
      where.push("EventTime < fromUnixTimestamp64Milli({toMs:Int64}, 'UTC')");
      params.toMs = Math.floor(query.to);
    }
    if (query.kinds !== undefined) {
      where.push('Kind IN {kinds:Array(String)}');
      params.kinds = [...query.kinds];
    }
    if (query.runId !== undefined) {
      where.push('RunId = {runId:String}');
      params.runId = query.runId;
    }
    if (query.beforeSeq !== undefined) {
      where.push('Seq < {beforeSeq:UInt64}');
      params.beforeSeq = Math.max(0, Math.floor(query.beforeSeq));
    }
    params.limit = Math.min(MAX_LIST, Math.max(1, Math.floor(query.limit ?? 100)));
    const order = query.order === 'asc' ? 'ASC' : 'DESC';
    const rows = await queryRows<EventRow>(
      this.client,
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE ${where.join(' AND ')} ORDER BY Seq ${order} LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map(eventFromRow);
  }

  /**
   * The breakers to resume after a restart: for each (tenant, scope, run), the snapshot in the
   * newest transition or operator action, unless that left the breaker CLOSED. Times in snapshots
   * are wall-clock, so an OPEN breaker keeps its remaining cooldown.
   */
  async restoreBreakerSnapshots(options: { tenantId?: string; sinceMs?: number } = {}): Promise<RestoredBreaker[]> {
    const where = ['Kind IN {kinds:Array(String)}', "JSONHas(Details, 'breaker')"];
    const params: Record<string, unknown> = { kinds: [...SNAPSHOT_KINDS] };
    if (options.tenantId !== undefined) {
      where.push('TenantId = {tenantId:String}');
      params.tenantId = options.tenantId;
    }
    if (options.sinceMs !== undefined) {
      where.push("EventTime >= fromUnixTimestamp64Milli({sinceMs:Int64}, 'UTC')");
      params.sinceMs = Math.floor(options.sinceMs);
    }
    const rows = await queryRows<{ TenantId: string; Scope: string; RunId: string; LastDetails: string; LastSeq: string }>(
      this.client,
      `SELECT TenantId, Scope, RunId, argMax(Details, Seq) AS LastDetails, toString(max(Seq)) AS LastSeq
       FROM audit_events WHERE ${where.join(' AND ')}
       GROUP BY TenantId, Scope, RunId`,
      params,
    );
    const restored: RestoredBreaker[] = [];
    for (const row of rows) {
      const key = parseBreakerKey(row.TenantId, row.Scope, row.RunId);
      const snapshot = parseBreakerSnapshot(parseJson(row.LastDetails)?.breaker);
      if (key === null || snapshot === null || snapshot.state === 'CLOSED') continue;
      restored.push({ key, snapshot, seq: Number(row.LastSeq) });
    }
    return restored;
  }

  #serialized<T>(tenantId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(tenantId) ?? Promise.resolve();
    // A failed append must not block the ones queued after it.
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(tenantId, tail);
    void tail.then(() => {
      if (this.#tails.get(tenantId) === tail) this.#tails.delete(tenantId);
    });
    return result;
  }

  async #append(input: AuditEventInput): Promise<AuditEvent> {
    const head = await this.#head(input.tenantId);
    const event = chainEvent(input, head, this.now());
    try {
      await this.client.insert({ table: 'audit_events', values: [rowFromEvent(event)], format: 'JSONEachRow' });
    } catch (err) {
      // The insert may have landed even though the client saw an error: re-read the head next time
      // rather than trusting memory, so a retry never writes the same Seq twice.
      this.#heads.delete(input.tenantId);
      throw err;
    }
    this.#heads.set(event.tenantId, { seq: event.seq, hash: event.hash });
    try {
      await this.client.insert({
        table: 'audit_heads',
        values: [{ TenantId: event.tenantId, Seq: event.seq, Hash: event.hash, EventTime: clickhouseTime(event.eventTime) }],
        format: 'JSONEachRow',
      });
    } catch (err) {
      throw new AuditHeadWriteError(event, err);
    }
    return event;
  }

  /**
   * The chain continues from the further of the newest stored event and the recorded head. When the
   * head is ahead (newest events deleted), continuing from it keeps the gap visible to verify()
   * instead of quietly reusing the deleted Seqs.
   */
  async #head(tenantId: string): Promise<ChainHead> {
    const cached = this.#heads.get(tenantId);
    if (cached) return cached;
    const [fromEvents, fromHeads] = await Promise.all([this.#newestEvent(tenantId), this.#recordedHead(tenantId)]);
    const head = fromHeads !== null && fromHeads.seq >= fromEvents.seq ? fromHeads : fromEvents;
    this.#heads.set(tenantId, head);
    return head;
  }

  async #newestEvent(tenantId: string): Promise<ChainHead> {
    // Aliases must not shadow the columns: argMax(Hash, Seq) reads the stored Seq.
    const [row] = await queryRows<{ LastSeq: string; LastHash: string }>(
      this.client,
      'SELECT toString(max(Seq)) AS LastSeq, argMax(Hash, Seq) AS LastHash FROM audit_events WHERE TenantId = {tenantId:String}',
      { tenantId },
    );
    return row ? { seq: Number(row.LastSeq), hash: row.LastHash } : GENESIS_HEAD;
  }

  async #recordedHead(tenantId: string): Promise<ChainHead | null> {
    // argMax over the rows instead of FINAL: correct before and after ReplacingMergeTree merges.
    const [row] = await queryRows<{ LastSeq: string; LastHash: string; Rows: string }>(
      this.client,
      `SELECT toString(max(Seq)) AS LastSeq, argMax(Hash, Seq) AS LastHash, toString(count()) AS Rows
       FROM audit_heads WHERE TenantId = {tenantId:String}`,
      { tenantId },
    );
    return row && row.Rows !== '0' ? { seq: Number(row.LastSeq), hash: row.LastHash } : null;
  }

  async #verify(tenantId: string): Promise<ChainVerification> {
    const verifier = new ChainVerifier();
    // Keyset pages on (Seq, Hash): a duplicated Seq (an inserted event) is read, not skipped.
    let after: { seq: number; hash: string } | null = null;
    while (true) {
      const params: Record<string, unknown> = { tenantId, limit: this.#verifyPageSize };
      let cursor = '';
      if (after) {
        cursor = 'AND (Seq, Hash) > ({afterSeq:UInt64}, {afterHash:String})';
        params.afterSeq = after.seq;
        params.afterHash = after.hash;
      }
      const rows = await queryRows<EventRow>(
        this.client,
        `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE TenantId = {tenantId:String} ${cursor}
         ORDER BY Seq, Hash LIMIT {limit:UInt32}`,
        params,
      );
      for (const row of rows) verifier.add(eventFromRow(row));
      const last = rows[rows.length - 1];
      if (rows.length < this.#verifyPageSize || last === undefined) break;
      after = { seq: Number(last.Seq), hash: last.Hash };
    }
    return verifier.finish(await this.#recordedHead(tenantId));
  }
}

function rowFromEvent(event: AuditEvent): Record<string, unknown> {
  return {
    TenantId: event.tenantId,
    Seq: event.seq,
    EventTime: clickhouseTime(event.eventTime),
    Kind: event.kind,
    RunId: event.runId,
    Scope: event.scope,
    Metric: event.metric,
    Threshold: event.threshold,
    Observed: event.observed,
    OldState: event.oldState,
    NewState: event.newState,
    Actor: event.actor,
    Reason: event.reason,
    Details: event.details,
    PrevHash: event.prevHash,
    Hash: event.hash,
  };
}

function eventFromRow(row: EventRow): AuditEvent {
  return {
    tenantId: row.TenantId,
    seq: Number(row.Seq),
    eventTime: Number(row.EventTimeMs),
    // Read back as stored: a tampered Kind must reach verify() unchanged to fail it.
    kind: row.Kind as AuditKind,
    runId: row.RunId,
    scope: row.Scope,
    metric: row.Metric,
    threshold: Number(row.Threshold),
    observed: Number(row.Observed),
    oldState: row.OldState,
    newState: row.NewState,
    actor: row.Actor,
    reason: row.Reason,
    details: row.Details,
    prevHash: row.PrevHash,
    hash: row.Hash,
  };
}

/** 'YYYY-MM-DD hh:mm:ss.sss' in UTC: what a DateTime64(3, 'UTC') column parses without settings. */
function clickhouseTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
