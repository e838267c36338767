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

interface Batch {
  /** the batch's rows, encoded as they arrive into the one Native block its insert sends */
  encoder: SpanBlockEncoder;
  rows: number;
  waiters: Waiter[];
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

  hasRoomFor(rows: number): boolean {
    return this.#queued + rows <= this.options.queueMaxRows;
  }

  /**
   * Admits spans (costUsd[i] is span i's cost), encoding them now, and resolves once they are
   * committed: a caller may change the spans as soon as this returns. Rejects with QueueFullError
   * when there is no room (nothing was admitted) and WriterClosedError after close().
   */
  write(spans: readonly AgentSpan[], costUsd: ArrayLike<number>): Promise<void> {
    const rows = spans.length;
    if (this.#closed) return Promise.reject(new WriterClosedError('writer is closed'));
    if (rows === 0) return Promise.resolve();
    if (!this.hasRoomFor(rows)) {
      return Promise.reject(new QueueFullError(`write queue full (${this.#queued} of ${this.options.queueMaxRows} spans)`));
    }
    return new Promise<void>((resolve, reject) => {
      // A request's spans never straddle two inserts; a batch that would overflow goes first.
      if (this.#pending.rows > 0 && this.#pending.rows + rows > this.options.batchMaxRows) this.#seal();
      const batch = this.#pending;
      batch.encoder.add(spans, costUsd); // throws (admitting nothing) only on malformed spans
      if (batch.rows === 0) batch.openedAt = performance.now();
      batch.rows += rows;
      batch.waiters.push({ resolve, reject });
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
    return { encoder: this.#encoders.pop() ?? new SpanBlockEncoder(), rows: 0, waiters: [], openedAt: 0 };
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
      for (const waiter of batch.waiters) waiter.resolve();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.options.onFlushError?.(error, batch.rows);
      for (const waiter of batch.waiters) waiter.reject(error);
    } finally {
      this.#encoders.push(batch.encoder);
      this.#queued -= batch.rows;
      this.options.onQueueDepth?.(this.#queued);
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
