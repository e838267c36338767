import type { AgentSpan } from '../contracts/agent-span.js';
import type { IngestRecord, IngestWal } from '../storage/ingest-wal.js';
import { refusalReason, WriterClosedError, type SpanWriter } from '../storage/span-writer.js';

export interface WalCommitterOptions {
  /** wait before writing again spans whose insert failed (ClickHouse unreachable); default 1 s */
  retryDelayMs?: number;
  /** an insert failed and will be retried */
  onRetry?: (error: Error, spans: number) => void;
  /** ClickHouse refused acknowledged spans for what they hold: they cannot be stored, and are dropped */
  onDropped?: (error: Error, spans: number) => void;
  /**
   * Answer from the file only while the write queue holds fewer rows than this (default: no
   * limit); past it requests take the commit path, as without the file: senders answered at once
   * outrun storage and their requests are refused 503 once the queue is full, each decoded for
   * nothing, where waiting for the commit paces them (and saturation pays nothing for the file).
   */
  earlyAckMaxQueuedRows?: number;
}

/**
 * Acknowledge-from-disk ingest: a request is answered once its record is durable in the
 * write-ahead file, and its spans are committed to ClickHouse behind the answer, retried until
 * they are (or the writer closes: the record then waits in the file for the next start's replay).
 */
export class WalCommitter {
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly wal: IngestWal,
    private readonly writer: SpanWriter,
    private readonly options: WalCommitterOptions = {},
  ) {}

  hasRoomFor(bytes: number): boolean {
    return this.wal.hasRoomFor(bytes);
  }

  /**
   * Writes the record and starts the insert of its spans; resolves when the record is durable.
   * `settled` runs once the first insert attempt has ended (the write queue's room is free again).
   * Throws when the record cannot be written (nothing was accepted).
   */
  accept(record: IngestRecord, spans: readonly AgentSpan[], costs: ArrayLike<number>, bytes: number, settled: () => void): Promise<void> {
    const { id, durable } = this.wal.append(record);
    this.#commit(id, spans, costs, bytes, settled);
    return durable;
  }

  /** Whether a request of `rows` spans is to be answered from the file; else it takes the commit path. */
  answersEarly(rows: number): boolean {
    return this.writer.queuedRows + rows <= (this.options.earlyAckMaxQueuedRows ?? Infinity);
  }

  /** Stops retrying (the records stay for the next start) and closes the file. */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.wal.close();
  }

  #commit(id: number, spans: readonly AgentSpan[], costs: ArrayLike<number>, bytes: number, settled: () => void): void {
    this.writer.write(spans, costs, bytes).then(
      () => {
        settled();
        this.wal.committed(id);
      },
      (err: Error) => {
        settled();
        if (err instanceof WriterClosedError) return;
        if (refusalReason(err) !== undefined) {
          this.options.onDropped?.(err, spans.length);
          this.wal.committed(id);
          return;
        }
        this.options.onRetry?.(err, spans.length);
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#commit(id, spans, costs, bytes, () => {});
        }, this.options.retryDelayMs ?? 1000);
        this.#timers.add(timer);
      },
    );
  }
}
