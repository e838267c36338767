import { WriteAheadLog } from '../audit/write-ahead-log.js';
import type { OtlpEncoding } from '../codecs/otlp-responses.js';

/** An accepted OTLP request as the write-ahead file keeps it: enough to decode and normalize it again. */
export interface IngestRecord {
  encoding: OtlpEncoding;
  /** the tenant its ingest key was bound to */
  keyTenant?: string;
  /** the body as the decoder read it (decompressed) */
  body: Buffer;
  /** the span ids that were accepted, when some of the request's spans were refused */
  spanIds?: readonly string[];
}

export interface ReplayedIngest {
  id: number;
  record: IngestRecord;
}

interface Line {
  e: 'p' | 'j';
  t?: string;
  b: string;
  s?: readonly string[];
}

export interface IngestWalOptions {
  /** bytes of records not yet committed to ClickHouse, past which hasRoomFor refuses */
  maxBytes: number;
  segmentBytes?: number;
}

/**
 * Accepted requests on local disk until ClickHouse has committed their spans, so that the receiver
 * can answer once the request is durable here rather than once the insert has committed. Each
 * record is written to its segment when appended (so a SIGKILL cannot lose it) and made durable
 * against power loss by an fdatasync shared by every request appended meanwhile (group commit).
 * Segments are deleted once all their records are committed (write-ahead-log.ts).
 */
export class IngestWal {
  /** ids appended and not committed, oldest first, with their bytes; committed ones wait here for the older ones */
  readonly #pending = new Map<number, number>();
  readonly #done = new Set<number>();
  #pendingBytes = 0;
  #syncing: Promise<void> | undefined;
  #nextSync: Promise<void> | undefined;

  private constructor(
    private readonly log: WriteAheadLog,
    private readonly options: IngestWalOptions,
  ) {}

  /** Opens the file in `dir`, with the records a previous process left (already committed ones included: replay skips stored spans). */
  static open(dir: string, options: IngestWalOptions): { wal: IngestWal; records: ReplayedIngest[] } {
    const { wal: log, records } = WriteAheadLog.open(dir, { segmentBytes: options.segmentBytes ?? 8 * 1024 * 1024 });
    const wal = new IngestWal(log, options);
    const replayed: ReplayedIngest[] = [];
    for (const { id, value } of records) {
      const line = value as Line;
      const body = Buffer.from(line.b, 'base64');
      wal.#track(id, body.length);
      replayed.push({ id, record: { encoding: line.e === 'p' ? 'protobuf' : 'json', body, ...(line.t !== undefined ? { keyTenant: line.t } : {}), ...(line.s ? { spanIds: line.s } : {}) } });
    }
    return { wal, records: replayed };
  }

  /** Whether a request of `bytes` fits: one always does when nothing is pending. */
  hasRoomFor(bytes: number): boolean {
    return this.#pendingBytes === 0 || this.#pendingBytes + bytes <= this.options.maxBytes;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  get pendingRecords(): number {
    return this.#pending.size;
  }

  /** Writes the record now (it survives the process from here on); `durable` resolves once it is synced to disk. */
  append(record: IngestRecord): { id: number; durable: Promise<void> } {
    const line: Line = { e: record.encoding === 'protobuf' ? 'p' : 'j', b: record.body.toString('base64') };
    if (record.keyTenant !== undefined) line.t = record.keyTenant;
    if (record.spanIds !== undefined) line.s = record.spanIds;
    const id = this.log.append(line);
    this.#track(id, record.body.length);
    return { id, durable: this.#durable() };
  }

  /** The record's spans are in ClickHouse: once every older record is too, their segments can go. */
  committed(id: number): void {
    if (!this.#pending.has(id)) return;
    this.#done.add(id);
    let through = 0;
    for (const [oldest, bytes] of this.#pending) {
      if (!this.#done.has(oldest)) break;
      this.#pending.delete(oldest);
      this.#done.delete(oldest);
      this.#pendingBytes -= bytes;
      through = oldest;
    }
    if (through > 0) this.log.release(through);
  }

  /** Syncs and closes; records not committed stay for the next start. */
  close(): void {
    this.log.close();
  }

  #track(id: number, bytes: number): void {
    this.#pending.set(id, bytes);
    this.#pendingBytes += bytes;
  }

  /**
   * One fdatasync at a time: a record appended while one runs may not be covered by it, so it
   * waits for the next, which then covers every record appended meanwhile.
   */
  #durable(): Promise<void> {
    if (this.#syncing === undefined) {
      this.#syncing = this.log.sync().finally(() => (this.#syncing = undefined));
      return this.#syncing;
    }
    this.#nextSync ??= this.#syncing.then(
      () => this.#afterSync(),
      () => this.#afterSync(),
    );
    return this.#nextSync;
  }

  #afterSync(): Promise<void> {
    this.#nextSync = undefined;
    return this.#durable();
  }
}
