import { join } from 'node:path';
import { breakerKeyId, parseBreakerKey, parseBreakerSnapshot, type BreakerKey, type BreakerSnapshot } from '../breakers/breaker-snapshot.js';
import { ChainVerifier, type AnchoredHead, type ChainVerification } from './audit-chain.js';
import { chainEvent, GENESIS_HEAD, type AuditEvent, type AuditEventInput, type ChainHead } from './audit-event.js';
import type { AuditBatch, AuditListQuery, AuditStore, BreakerStateRow, TripHistory } from './audit-store.js';
import { WriteAheadLog, type ReplayedRecord } from './write-ahead-log.js';

export type { AuditListQuery } from './audit-store.js';

/** An OPEN (or forced open, half-open, disabled) breaker as the audit log last recorded it. */
export interface RestoredBreaker {
  key: BreakerKey;
  snapshot: BreakerSnapshot;
  /** the audit event it was read from */
  seq: number;
}

export interface AuditLogOptions {
  /** where the write-ahead log lives (a directory of its own) */
  walDir: string;
  now?: () => number;
  /** events per flush, at most; default 5 000 */
  batchMaxEvents?: number;
  /**
   * longest an event waits for its flush; default 250 ms. The write-ahead log already holds it:
   * this only sets how many inserts (each a part to merge, in three tables) a storm costs ClickHouse.
   */
  batchMaxDelayMs?: number;
  /** queued events past which automated run-breaker transitions are coalesced; default 10 000 */
  coalesceAbove?: number;
  verifyPageSize?: number;
  onQueueDepth?: (events: number) => void;
  /** an automated transition was folded into the next event of its breaker */
  onCoalesced?: () => void;
  onFlushError?: (error: Error, events: number) => void;
  /** a batch reached ClickHouse (its heads and breaker states too) */
  onWritten?: (batch: AuditBatch) => void;
  /** the heads signed checkpoints anchored: verify() checks against them, and a chain never restarts below one */
  anchor?: { anchoredHead(tenantId: string): AnchoredHead | undefined; anchoredHeads(): ReadonlyMap<string, ChainHead> };
}

export class AuditLogClosedError extends Error {
  override name = 'AuditLogClosedError';
}

interface Waiter {
  resolve(event: AuditEvent): void;
  reject(error: Error): void;
}

interface Queued {
  event: AuditEvent;
  walId: number;
  breaker: BreakerStateRow | undefined;
  waiters: Waiter[];
}

interface Deferred {
  input: AuditEventInput;
  /** transitions this entry stands for */
  count: number;
  firstAt: number;
  firstFrom: string;
  walId: number;
  onChained: ((event: AuditEvent) => void) | undefined;
}

type WalRecord = { t: 'e'; e: AuditEvent } | { t: 'd'; i: AuditEventInput; n: number; a: number; f: string };

const VERIFY_PAGE = 5_000;
const CLOSED_BREAKER_RETENTION_MS = 24 * 3_600_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * The tenant-chained, append-only audit log, written like the span writer: an event gets its Seq
 * and hash synchronously from the in-memory head of its tenant's chain, is written to a local
 * write-ahead log before `record` returns (so a killed process loses nothing it published), and
 * reaches ClickHouse in batches, one multi-row insert per table per flush. The write-ahead log is
 * synced per batch and replayed at start; what ClickHouse already holds is skipped, so a replay
 * can run any number of times. One AuditLog per tenant-owning process: two writers for the same
 * tenant would fork its chain.
 */
export class AuditLog {
  readonly #store: AuditStore;
  readonly #wal: WriteAheadLog;
  readonly #now: () => number;
  readonly #o: AuditLogOptions;
  readonly #heads: Map<string, ChainHead>;
  readonly #queue: Queued[] = [];
  /** the newest queued event of each tenant, for flushed() */
  readonly #lastQueued = new Map<string, Queued>();
  readonly #deferred = new Map<string, Deferred>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;
  #closeDeadline = Infinity;
  /** a write failed: ClickHouse may hold part of what the next write sends */
  #uncertain = false;

  private constructor(store: AuditStore, wal: WriteAheadLog, heads: Map<string, ChainHead>, options: AuditLogOptions) {
    this.#store = store;
    this.#wal = wal;
    this.#heads = heads;
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Reads every tenant's chain head, replays what the write-ahead log holds beyond it (a previous
   * process stopped before ClickHouse confirmed it), and starts writing.
   */
  static async open(store: AuditStore, options: AuditLogOptions): Promise<{ log: AuditLog; replayed: number }> {
    const heads = await store.heads();
    // A tenant whose events and head were deleted continues after its anchored head: the gap stays visible.
    for (const [tenantId, anchored] of options.anchor?.anchoredHeads() ?? []) {
      if (anchored.seq > (heads.get(tenantId) ?? GENESIS_HEAD).seq) heads.set(tenantId, { seq: anchored.seq, hash: anchored.hash });
    }
    const { wal, records } = WriteAheadLog.open(options.walDir);
    const log = new AuditLog(store, wal, heads, options);
    const replayed = await log.#replay(records);
    return { log, replayed };
  }

  /** Where a data directory keeps the audit write-ahead log. */
  static walDirIn(dataDir: string): string {
    return join(dataDir, 'audit-wal');
  }

  /**
   * Chains and durably queues an event now, returning it. An automated run-breaker transition that
   * arrives while the queue is over its bound is coalesced instead: folded into the next event of
   * its breaker, which `onChained` receives when it is chained (undefined is returned then).
   */
  record(input: AuditEventInput, onChained?: (event: AuditEvent) => void): AuditEvent | undefined {
    if (this.#closed) throw new AuditLogClosedError('audit log is closed');
    if (this.#queue.length >= this.#coalesceAbove() && isCoalescible(input)) {
      this.#defer(input, onChained);
      return undefined;
    }
    const key = coalescingKey(input);
    const deferred = key === undefined ? undefined : this.#deferred.get(key);
    if (deferred !== undefined) {
      // A newer transition of a coalesced breaker carries the folded ones with it.
      this.#deferred.delete(key!);
      input = withCoalesced(input, deferred);
    }
    const event = this.#chain(input, []);
    onChained?.(event);
    return event;
  }

  /** Records an event and resolves once ClickHouse has it (never coalesced). */
  append(input: AuditEventInput): Promise<AuditEvent> {
    if (this.#closed) return Promise.reject(new AuditLogClosedError('audit log is closed'));
    return new Promise((resolve, reject) => {
      try {
        this.#chain(input, [{ resolve, reject }]);
        this.#startFlush(); // someone is waiting: no batching delay
      } catch (err) {
        reject(err as Error);
      }
    });
  }

  /** Tenants with a chain (the platform's '*' included). */
  tenants(): IterableIterator<string> {
    return this.#heads.keys();
  }

  /** Events chained and not yet confirmed by ClickHouse. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Resolves once every event of `tenantId` chained so far is in ClickHouse. */
  flushed(tenantId: string): Promise<void> {
    const last = this.#lastQueued.get(tenantId);
    if (last === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => last.waiters.push({ resolve: () => resolve(), reject }));
  }

  /** Resolves once everything chained so far is in ClickHouse. */
  async flush(): Promise<void> {
    while (this.#queue.length > 0 || this.#flushing !== undefined) {
      if (this.#closed && Date.now() >= this.#closeDeadline) return;
      this.#startFlush();
      await this.#flushing;
    }
  }

  /**
   * Stops taking events and writes what is queued until `deadlineMs` (epoch ms). What is left stays
   * in the write-ahead log for the next start; returns how many events that is.
   */
  async close(deadlineMs = Infinity): Promise<{ pending: number }> {
    if (this.#closed) return { pending: this.#queue.length };
    this.#chainDeferred();
    this.#closed = true;
    this.#closeDeadline = deadlineMs;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const remaining = deadlineMs - Date.now();
    if (remaining === Infinity) await this.flush();
    else if (remaining > 0) {
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([this.flush(), new Promise<void>((resolve) => (timeout = setTimeout(resolve, remaining)))]);
      clearTimeout(timeout);
    }
    const pending = this.#queue.length;
    for (const queued of this.#queue) {
      for (const waiter of queued.waiters) waiter.reject(new AuditLogClosedError('stopped before ClickHouse confirmed the event; it is kept in the write-ahead log'));
      queued.waiters = [];
    }
    this.#wal.close();
    return { pending };
  }

  /** Recomputes the tenant's chain from storage and compares its end with the recorded head. */
  async verify(tenantId: string): Promise<ChainVerification> {
    await this.flushed(tenantId);
    const verifier = new ChainVerifier(this.#o.anchor?.anchoredHead(tenantId));
    const pageSize = Math.max(1, Math.floor(this.#o.verifyPageSize ?? VERIFY_PAGE));
    let after: { seq: number; hash: string } | null = null;
    while (true) {
      const rows = await this.#store.chainPage(tenantId, after, pageSize);
      for (const event of rows) verifier.add(event);
      const last = rows[rows.length - 1];
      if (rows.length < pageSize || last === undefined) break;
      after = { seq: last.seq, hash: last.hash };
    }
    return verifier.finish(await this.#store.recordedHead(tenantId));
  }

  /** A tenant's events, filtered, as ClickHouse holds them. */
  list(tenantId: string, query: AuditListQuery = {}): Promise<AuditEvent[]> {
    return this.#store.list(tenantId, query);
  }

  /** The breakers to resume after a restart: each one's newest recorded state, unless CLOSED. */
  async restoreBreakers(): Promise<RestoredBreaker[]> {
    const restored: RestoredBreaker[] = [];
    for (const row of await this.#store.openBreakers()) {
      const key = parseBreakerKey(row.tenantId, row.scope, row.runId);
      const snapshot = parseBreakerSnapshot(parseJson(row.snapshot));
      if (key === null || snapshot === null || snapshot.state === 'CLOSED') continue;
      restored.push({ key, snapshot, seq: row.seq });
    }
    return restored;
  }

  /** Trips since `sinceMs` and unacknowledged escalations, for the breaker engine's escalation after a restart. */
  tripHistory(sinceMs: number): Promise<TripHistory> {
    return this.#store.tripHistory(sinceMs);
  }

  /** Forgets breakers CLOSED for longer than `ageMs`: restore reads the breakers that matter, not every run ever. */
  pruneClosedBreakers(ageMs = CLOSED_BREAKER_RETENTION_MS): Promise<number> {
    return this.#store.pruneClosedBreakers(this.#now() - ageMs);
  }

  #chain(input: AuditEventInput, waiters: Waiter[]): AuditEvent {
    const head = this.#heads.get(input.tenantId) ?? GENESIS_HEAD;
    const event = chainEvent(input, head, this.#now());
    const walId = this.#wal.append({ t: 'e', e: event } satisfies WalRecord);
    this.#heads.set(event.tenantId, { seq: event.seq, hash: event.hash });
    this.#enqueue({ event, walId, breaker: breakerStateOf(input.details, event), waiters });
    return event;
  }

  #enqueue(queued: Queued): void {
    this.#queue.push(queued);
    this.#lastQueued.set(queued.event.tenantId, queued);
    this.#o.onQueueDepth?.(this.#queue.length);
    if (this.#queue.length >= this.#batchMax()) this.#startFlush();
    else if (this.#timer === undefined && this.#flushing === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#startFlush();
      }, this.#o.batchMaxDelayMs ?? 250);
    }
  }

  #defer(input: AuditEventInput, onChained: ((event: AuditEvent) => void) | undefined): void {
    const key = coalescingKey(input)!;
    const previous = this.#deferred.get(key);
    const entry: Deferred = {
      input,
      count: (previous?.count ?? 0) + 1,
      firstAt: previous?.firstAt ?? input.eventTime ?? this.#now(),
      firstFrom: previous?.firstFrom ?? input.oldState ?? '',
      walId: 0,
      onChained: onChained ?? previous?.onChained,
    };
    entry.walId = this.#wal.append({ t: 'd', i: input, n: entry.count, a: entry.firstAt, f: entry.firstFrom } satisfies WalRecord);
    // Re-inserting moves the entry to the end: the map stays in the order of the WAL ids.
    this.#deferred.delete(key);
    this.#deferred.set(key, entry);
    this.#o.onCoalesced?.();
  }

  #chainDeferred(): void {
    const entries = [...this.#deferred.values()];
    this.#deferred.clear();
    for (const entry of entries) {
      const event = this.#chain(withCoalesced(entry.input, entry), []);
      entry.onChained?.(event);
    }
  }

  #startFlush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#flushing !== undefined || this.#queue.length === 0) return;
    this.#flushing = this.#flushLoop();
  }

  /**
   * Writes batches until the queue is empty. It clears `#flushing` in the same tick as it finds the
   * queue empty: an event chained by a waiter's continuation must start a flush of its own.
   */
  async #flushLoop(): Promise<void> {
    await Promise.resolve(); // `#flushing` is assigned before the loop can end
    let delay = RETRY_MIN_MS;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.slice(0, this.#batchMax());
        try {
          await this.#wal.sync();
          await this.#write(batch);
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          this.#o.onFlushError?.(error, batch.length);
          this.#uncertain = true;
          if (Date.now() + delay > this.#closeDeadline) return;
          await new Promise((resolve) => setTimeout(resolve, delay));
          delay = Math.min(RETRY_MAX_MS, delay * 2);
          continue;
        }
        delay = RETRY_MIN_MS;
        this.#queue.splice(0, batch.length);
        for (const queued of batch) {
          if (this.#lastQueued.get(queued.event.tenantId) === queued) this.#lastQueued.delete(queued.event.tenantId);
          for (const waiter of queued.waiters) waiter.resolve(queued.event);
        }
        this.#wal.release(this.#releasable());
        this.#o.onQueueDepth?.(this.#queue.length);
        if (!this.#closed && this.#deferred.size > 0 && this.#queue.length < this.#coalesceAbove() / 2) this.#chainDeferred();
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /**
   * Writes one batch. After a failed attempt the insert may still have landed, so events ClickHouse
   * already holds are left out: a retry never stores the same Seq twice.
   */
  async #write(batch: readonly Queued[]): Promise<void> {
    let events = batch.map((q) => q.event);
    if (this.#uncertain) {
      const stored = await this.#store.storedSeqs([...new Set(events.map((e) => e.tenantId))]);
      events = events.filter((e) => e.seq > (stored.get(e.tenantId) ?? 0));
    }
    const write: AuditBatch = { events, ...headsAndStates(batch) };
    await this.#store.write(write);
    this.#uncertain = false;
    this.#o.onWritten?.(write);
  }

  /** The highest WAL id below which every record is in ClickHouse or superseded. */
  #releasable(): number {
    let lowest = Infinity;
    if (this.#queue.length > 0) lowest = this.#queue[0]!.walId;
    for (const entry of this.#deferred.values()) {
      lowest = Math.min(lowest, entry.walId);
      break; // the map is in WAL order
    }
    return Number.isFinite(lowest) ? lowest - 1 : Number.MAX_SAFE_INTEGER;
  }

  async #replay(records: readonly ReplayedRecord[]): Promise<number> {
    const events: { event: AuditEvent; walId: number }[] = [];
    const deferred = new Map<string, { record: Extract<WalRecord, { t: 'd' }>; walId: number }>();
    for (const { id, value } of records) {
      const record = value as WalRecord;
      if (record?.t === 'e') {
        events.push({ event: record.e, walId: id });
        const key = coalescingKey(record.e);
        if (key !== undefined && deferred.has(key)) deferred.delete(key);
      } else if (record?.t === 'd') {
        deferred.set(coalescingKey(record.i)!, { record, walId: id });
      }
    }
    const stored = await this.#store.storedSeqs([...new Set(events.map((e) => e.event.tenantId))]);
    await this.#repairStored(events.map((e) => e.event).filter((e) => e.seq <= (stored.get(e.tenantId) ?? 0)));
    let replayed = 0;
    for (const { event, walId } of events) {
      if (event.seq <= (stored.get(event.tenantId) ?? 0)) continue;
      const head = this.#heads.get(event.tenantId) ?? GENESIS_HEAD;
      if (event.seq > head.seq) this.#heads.set(event.tenantId, { seq: event.seq, hash: event.hash });
      this.#enqueue({ event, walId, breaker: breakerStateOf(event.details, event), waiters: [] });
      replayed++;
    }
    for (const { record } of deferred.values()) {
      this.#chain(withCoalesced(record.i, { count: record.n, firstAt: record.a, firstFrom: record.f }), []);
      replayed++;
    }
    if (this.#queue.length === 0) this.#wal.release(Number.MAX_SAFE_INTEGER);
    else await this.flush();
    return replayed;
  }

  /**
   * Events of the write-ahead log that ClickHouse holds: a process killed between a batch's events
   * and its heads and breaker states left those behind, so they are written again (both are
   * idempotent: the newest Seq wins).
   */
  async #repairStored(storedEvents: readonly AuditEvent[]): Promise<void> {
    if (storedEvents.length === 0) return;
    const repair: AuditBatch = { events: [], ...headsAndStates(storedEvents.map((event) => ({ event, breaker: breakerStateOf(event.details, event) }))) };
    await this.#store.write(repair);
    this.#o.onWritten?.(repair);
  }

  #batchMax(): number {
    return Math.max(1, this.#o.batchMaxEvents ?? 5_000);
  }

  #coalesceAbove(): number {
    return Math.max(1, this.#o.coalesceAbove ?? 10_000);
  }
}

/** Automated transitions of one run's breaker: the only events that may be folded together. */
function isCoalescible(input: AuditEventInput): boolean {
  return input.kind === 'breaker_transition' && input.scope === 'RUN';
}

function coalescingKey(input: Pick<AuditEventInput, 'kind' | 'scope' | 'tenantId' | 'runId'>): string | undefined {
  if (input.kind !== 'breaker_transition' || input.scope !== 'RUN') return undefined;
  return breakerKeyId({ tenantId: input.tenantId, scope: 'RUN', runId: input.runId ?? '' });
}

/** The newest of `folded.count` transitions, saying how many it stands for and where they began. */
function withCoalesced(input: AuditEventInput, folded: Pick<Deferred, 'count' | 'firstAt' | 'firstFrom'>): AuditEventInput {
  const details = typeof input.details === 'string' ? (parseJson(input.details) ?? {}) : ((input.details as Record<string, unknown> | undefined) ?? {});
  return { ...input, details: { ...details, coalesced: { transitions: folded.count, firstAt: folded.firstAt, firstFrom: folded.firstFrom } } };
}

/** What a run of events in chain order leaves behind: each tenant's newest link, each breaker's newest state. */
function headsAndStates(entries: readonly { event: AuditEvent; breaker: BreakerStateRow | undefined }[]): Pick<AuditBatch, 'heads' | 'breakerStates'> {
  const heads = new Map<string, ChainHead & { eventTime: number }>();
  const states = new Map<string, BreakerStateRow>();
  for (const { event, breaker } of entries) {
    heads.set(event.tenantId, { seq: event.seq, hash: event.hash, eventTime: event.eventTime });
    if (breaker !== undefined) states.set(`${breaker.tenantId}\u0000${breaker.scope}\u0000${breaker.runId}`, breaker);
  }
  return { heads, breakerStates: [...states.values()] };
}

/** The breaker state an event records, when its details carry a breaker snapshot. */
function breakerStateOf(details: unknown, event: AuditEvent): BreakerStateRow | undefined {
  if (typeof details === 'string') details = parseJson(details) ?? undefined;
  if (typeof details !== 'object' || details === null) return undefined;
  const snapshot = (details as { breaker?: unknown }).breaker;
  if (typeof snapshot !== 'object' || snapshot === null || event.scope === '') return undefined;
  const state = (snapshot as { state?: unknown }).state;
  if (typeof state !== 'string') return undefined;
  return { tenantId: event.tenantId, scope: event.scope, runId: event.runId, state, snapshot: JSON.stringify(snapshot), seq: event.seq, updatedAt: event.eventTime };
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
