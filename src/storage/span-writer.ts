import type { ClickHouseClient } from '@clickhouse/client';
import type { AgentSpan } from '../contracts/agent-span.js';
import { SpanBlockEncoder } from './span-block.js';
import { blockInserterFor, type BlockInserter } from './span-insert.js';

export interface SpanWriterOptions {
  table: string;
  /** rows per insert, at most (a single request's block is never split) */
  batchMaxRows: number;
  /** longest a row waits for its batch to fill */
  batchMaxDelayMs: number;
  /** rows admitted but not yet committed; past it `tryWrite` refuses */
  queueMaxRows: number;
  /**
   * Attribute bytes (as write() is told them) admitted but not yet committed, past which write
   * refuses unless the queue is empty: rows alone do not bound memory when a resource's attributes
   * are stored on each of its rows. Default unlimited.
   */
  queueMaxBytes?: number;
  /** attribute bytes per insert, at most (a single request's are never split); default unlimited */
  batchMaxBytes?: number;
  /**
   * A batch this big goes as soon as an insert slot is free instead of waiting out
   * batchMaxDelayMs: under load, batches grow while the previous insert runs. Default 1000.
   */
  batchMinRows?: number;
  /**
   * Inserts running at once. Default 1: the next batch fills (and is encoded) while one commits.
   * Measured on the embedded engine (2 cores, bench/run.ts), two in flight halve the batches, and
   * ClickHouse's cost per insert (a part written, later merged) outweighs the overlap.
   */
  maxInFlight?: number;
  /** how batches reach ClickHouse; default: a spool file for the embedded engine, the body for a server */
  inserter?: BlockInserter;
  onFlush?: (rows: number, seconds: number) => void;
  onFlushError?: (error: Error, rows: number) => void;
  onQueueDepth?: (rows: number) => void;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/** One write() call: its rows, kept until they commit so a refused batch can be retried without it. */
interface Request {
  spans: readonly AgentSpan[];
  costUsd: ArrayLike<number>;
  waiter: Waiter;
}

interface Batch {
  /** the batch's rows, encoded as they arrive into the one Native block its insert sends */
  encoder: SpanBlockEncoder;
  rows: number;
  requests: Request[];
  /** the attribute bytes its requests were admitted with */
  bytes: number;
  /** performance.now() when its first rows arrived */
  openedAt: number;
}

export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

export class WriterClosedError extends Error {
  override name = 'WriterClosedError';
}

/**
 * Batches rows from many requests into few ClickHouse inserts. A request's promise settles only
 * when the insert holding its rows has committed (or failed), so the receiver acknowledges nothing
 * that is not stored. Up to `maxInFlight` inserts run at once (one by default); rows arriving
 * meanwhile form the next batch, which goes when a slot frees up if it has `batchMinRows`, else
 * when its oldest row has waited `batchMaxDelayMs`. So batches grow with load, and a trickle still
 * makes few inserts. Rows are encoded at admission, into their batch's block (ClickHouse pays per block, so a batch is
 * one block, not one per request), spreading that cost over requests rather than stalling the flush.
 */
export class SpanWriter {
  readonly #encoders: SpanBlockEncoder[] = [];
  #pending: Batch = this.#emptyBatch();
  /** batches closed to new rows (full, or drained) waiting for an insert slot, oldest first */
  readonly #sealed: Batch[] = [];
  #queued = 0;
  #queuedBytes = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #inserter: BlockInserter;
  readonly #maxInFlight: number;
  readonly #minRows: number;

  constructor(
    client: ClickHouseClient,
    private readonly options: SpanWriterOptions,
  ) {
    this.#inserter = options.inserter ?? blockInserterFor(client, options.table);
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.#minRows = Math.max(1, Math.min(options.batchMinRows ?? 1000, options.batchMaxRows));
  }

  /** rows admitted and not yet committed */
  get queuedRows(): number {
    return this.#queued;
  }

  get capacity(): number {
    return this.options.queueMaxRows;
  }

  /** attribute bytes the queue holds before write refuses */
  get byteCapacity(): number {
    return this.options.queueMaxBytes ?? Infinity;
  }

  hasRoomFor(rows: number, bytes = 0): boolean {
    if (this.#queued + rows > this.options.queueMaxRows) return false;
    return this.#queuedBytes === 0 || this.#queuedBytes + bytes <= (this.options.queueMaxBytes ?? Infinity);
  }

  /**
   * Admits spans (costUsd[i] is span i's cost), encoding them now, and resolves once they are
   * committed: the caller must not change the spans until then (a refused batch is re-encoded
   * from them). `bytes` is what their attributes take stored. Rejects with QueueFullError when
   * there is no room (nothing was admitted) and WriterClosedError after close().
   */
  write(spans: readonly AgentSpan[], costUsd: ArrayLike<number>, bytes = 0): Promise<void> {
    const rows = spans.length;
    if (this.#closed) return Promise.reject(new WriterClosedError('writer is closed'));
    if (rows === 0) return Promise.resolve();
    if (!this.hasRoomFor(rows, bytes)) {
      return Promise.reject(new QueueFullError(`write queue full (${this.#queued} of ${this.options.queueMaxRows} spans, ${this.#queuedBytes} attribute bytes)`));
    }
    return new Promise<void>((resolve, reject) => {
      // A request's spans never straddle two inserts; a batch that would overflow goes first.
      const pending = this.#pending;
      if (pending.rows > 0 && (pending.rows + rows > this.options.batchMaxRows || pending.bytes + bytes > (this.options.batchMaxBytes ?? Infinity))) this.#seal();
      const batch = this.#pending;
      batch.encoder.add(spans, costUsd); // throws (admitting nothing) only on malformed spans
      if (batch.rows === 0) batch.openedAt = performance.now();
      batch.rows += rows;
      batch.bytes += bytes;
      this.#queuedBytes += bytes;
      batch.requests.push({ spans, costUsd, waiter: { resolve, reject } });
      this.#queued += rows;
      this.options.onQueueDepth?.(this.#queued);
      this.#schedule();
    });
  }

  #seal(): void {
    this.#sealed.push(this.#pending);
    this.#pending = this.#emptyBatch();
  }

  #emptyBatch(): Batch {
    return { encoder: this.#encoders.pop() ?? new SpanBlockEncoder(), rows: 0, requests: [], bytes: 0, openedAt: 0 };
  }

  #schedule(): void {
    while (this.#inFlight.size < this.#maxInFlight) {
      const batch = this.#next();
      if (!batch) break;
      this.#start(batch);
    }
    const waiting = this.#pending.rows > 0 && this.#inFlight.size < this.#maxInFlight;
    if (waiting && !this.#timer) {
      const due = this.#pending.openedAt + this.options.batchMaxDelayMs - performance.now();
      this.#timer = setTimeout(
        () => {
          this.#timer = undefined;
          this.#schedule();
        },
        Math.max(0, due),
      );
    } else if (!waiting && this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** The batch to insert now, if any is due. */
  #next(): Batch | undefined {
    const sealed = this.#sealed.shift();
    if (sealed) return sealed;
    const batch = this.#pending;
    if (batch.rows === 0) return undefined;
    const due =
      this.#closed ||
      batch.rows >= this.#minRows ||
      batch.bytes >= (this.options.batchMaxBytes ?? Infinity) ||
      performance.now() - batch.openedAt >= this.options.batchMaxDelayMs;
    if (!due) return undefined;
    this.#pending = this.#emptyBatch();
    return batch;
  }

  #start(batch: Batch): void {
    const running: Promise<void> = this.#insert(batch).finally(() => {
      this.#inFlight.delete(running);
      this.#schedule();
    });
    this.#inFlight.add(running);
  }

  async #insert(batch: Batch): Promise<void> {
    const started = performance.now();
    try {
      // The block lives in the encoder's own buffer: the encoder goes back to the pool (below)
      // only once the insert has ended, so at most maxInFlight + 1 encoders ever exist.
      const block = batch.encoder.finishReused();
      await this.#inserter.insert([block]);
      this.options.onFlush?.(batch.rows, (performance.now() - started) / 1000);
      for (const request of batch.requests) request.waiter.resolve();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.options.onFlushError?.(error, batch.rows);
      if (batch.requests.length > 1 && isRefusal(error)) await this.#retrySplit(batch.requests, error);
      else for (const request of batch.requests) request.waiter.reject(error);
    } finally {
      batch.encoder.releaseBlock();
      this.#encoders.push(batch.encoder);
      this.#queued -= batch.rows;
      this.#queuedBytes -= batch.bytes;
      this.options.onQueueDepth?.(this.#queued);
    }
  }

  /**
   * ClickHouse refused a batch for what is in it: retries it in halves, down to single requests,
   * so only the request that holds the offending rows gets the error (log2 of the requests'
   * count extra inserts per offender).
   */
  async #retrySplit(requests: readonly Request[], error: Error): Promise<void> {
    if (requests.length === 1) {
      requests[0]!.waiter.reject(error);
      return;
    }
    const half = Math.ceil(requests.length / 2);
    for (const part of [requests.slice(0, half), requests.slice(half)]) {
      const encoder = new SpanBlockEncoder();
      for (const request of part) encoder.add(request.spans, request.costUsd);
      try {
        await this.#inserter.insert([encoder.finish()]);
        for (const request of part) request.waiter.resolve();
      } catch (err) {
        const partError = err instanceof Error ? err : new Error(String(err));
        if (part.length > 1 && isRefusal(partError)) await this.#retrySplit(part, partError);
        else for (const request of part) request.waiter.reject(partError);
      }
    }
  }

  /** Flushes what is queued, without waiting out the delay, and waits for every insert to end. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0 || this.#pending.rows > 0 || this.#sealed.length > 0) {
      if (this.#pending.rows > 0) this.#seal();
      this.#schedule();
      await Promise.race(this.#inFlight);
    }
  }

  /** Stops admitting rows, then drains. */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      await this.drain();
    } finally {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#inserter.close();
    }
  }
}

/**
 * ClickHouse answered with an exception (it read the insert and refused it), as opposed to a
 * connection failure or timeout, where retrying smaller inserts would only multiply the wait.
 */
function isRefusal(error: Error): boolean {
  return refusalReason(error) !== undefined;
}

/** What ClickHouse said when it refused an insert (its exception's text, shortened); undefined for other failures. */
export function refusalReason(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  const said = /\bDB::Exception: ([^\n]*)/.exec(error.message)?.[1];
  if (said === undefined && !(typeof code === 'string' && /^\d+$/.test(code))) return undefined;
  const text = (said ?? error.message).replace(/\s*\(version [^)]*\)\s*$/, '');
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}
