import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';

export interface SpanWriterOptions {
  table: string;
  /** rows per insert */
  batchMaxRows: number;
  /** longest a row waits for its batch to fill */
  batchMaxDelayMs: number;
  /** rows admitted but not yet committed; past it `tryWrite` refuses */
  queueMaxRows: number;
  onFlush?: (rows: number, seconds: number) => void;
  onFlushError?: (error: Error, rows: number) => void;
  onQueueDepth?: (rows: number) => void;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

interface Batch {
  lines: string[];
  rows: number;
  waiters: Waiter[];
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
 * that is not stored. One insert is in flight at a time; rows arriving meanwhile form the next batch,
 * so batches grow with load instead of inserts piling up. Rows are serialized to JSON lines at
 * admission, spreading that cost over requests rather than stalling the flush.
 */
export class SpanWriter {
  #pending: Batch = emptyBatch();
  #queued = 0;
  #inFlight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly client: ClickHouseClient,
    private readonly options: SpanWriterOptions,
  ) {}

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
   * Admits rows (already-serialized JSON objects, one per line) and resolves once they are committed.
   * Throws QueueFullError synchronously-as-rejection when there is no room: nothing was admitted.
   */
  write(lines: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.reject(new WriterClosedError('writer is closed'));
    if (lines.length === 0) return Promise.resolve();
    if (!this.hasRoomFor(lines.length)) {
      return Promise.reject(new QueueFullError(`write queue full (${this.#queued} of ${this.options.queueMaxRows} spans)`));
    }
    return new Promise<void>((resolve, reject) => {
      const batch = this.#pending;
      for (const line of lines) batch.lines.push(line);
      batch.rows += lines.length;
      batch.waiters.push({ resolve, reject });
      this.#queued += lines.length;
      this.options.onQueueDepth?.(this.#queued);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#inFlight) return; // the running flush picks the batch up when it ends
    if (this.#pending.rows >= this.options.batchMaxRows || this.options.batchMaxDelayMs === 0) {
      this.#flushNow();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#flushNow();
      }, this.options.batchMaxDelayMs);
    }
  }

  #flushNow(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#inFlight || this.#pending.rows === 0) return;
    const batch = this.#pending;
    this.#pending = emptyBatch();
    this.#inFlight = this.#insert(batch).finally(() => {
      this.#inFlight = undefined;
      if (this.#pending.rows > 0) {
        // Under load the next batch is already waiting: send it without the delay.
        if (this.#pending.rows >= this.options.batchMaxRows || this.#closed) this.#flushNow();
        else this.#schedule();
      }
    });
  }

  async #insert(batch: Batch): Promise<void> {
    const started = performance.now();
    try {
      // Rows are JSON lines already, so the batch goes as one raw body through exec: insert() would
      // want row objects and serialize them again.
      const result = await this.client.exec({
        query: `INSERT INTO ${this.options.table} FORMAT JSONEachRow`,
        values: Readable.from([Buffer.from(batch.lines.join('\n'))], { objectMode: false }),
      });
      result.stream.resume();
      this.options.onFlush?.(batch.rows, (performance.now() - started) / 1000);
      for (const waiter of batch.waiters) waiter.resolve();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.options.onFlushError?.(error, batch.rows);
      for (const waiter of batch.waiters) waiter.reject(error);
    } finally {
      this.#queued -= batch.rows;
      this.options.onQueueDepth?.(this.#queued);
    }
  }

  /** Flushes what is queued and waits for every insert to end. */
  async drain(): Promise<void> {
    while (this.#inFlight || this.#pending.rows > 0) {
      this.#flushNow();
      await this.#inFlight;
    }
  }

  /** Stops admitting rows, then drains. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.drain();
  }
}

function emptyBatch(): Batch {
  return { lines: [], rows: 0, waiters: [] };
}
