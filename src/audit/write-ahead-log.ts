import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const SEGMENT = /^wal-(\d{16})\.jsonl$/;
const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;

interface Segment {
  path: string;
  firstId: number;
  /** id of its last record; firstId - 1 while empty */
  lastId: number;
  bytes: number;
}

export interface ReplayedRecord {
  id: number;
  value: unknown;
}

/**
 * An append-only local file of JSON records, in segments. A record is written to the file (the
 * page cache) synchronously when appended, so it survives the process being killed; `sync()` makes
 * everything appended so far durable against power loss. Segments are deleted once every record in
 * them is released, so the log holds only what storage has not confirmed.
 */
export class WriteAheadLog {
  readonly #dir: string;
  readonly #segmentBytes: number;
  readonly #segments: Segment[] = [];
  #fd: number;
  #nextId: number;
  #dirty = false;
  #released = 0;
  #closed = false;
  /** fdatasync calls under way, and descriptors of rotated segments they may still be using */
  #syncing = 0;
  readonly #retired: number[] = [];

  private constructor(dir: string, segmentBytes: number, nextId: number, existing: Segment[]) {
    this.#dir = dir;
    this.#segmentBytes = segmentBytes;
    this.#nextId = nextId;
    this.#segments.push(...existing);
    this.#released = nextId - 1 - existing.reduce((n, s) => n + (s.lastId - s.firstId + 1), 0);
    this.#fd = this.#openSegment();
  }

  /**
   * Opens the log in `dir`, returning every record the previous process left, in order. A torn
   * last line (the process died mid-write) is not a record. New records go to a fresh segment.
   */
  static open(dir: string, options: { segmentBytes?: number } = {}): { wal: WriteAheadLog; records: ReplayedRecord[] } {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const names = readdirSync(dir)
      .filter((n) => SEGMENT.test(n))
      .sort();
    const records: ReplayedRecord[] = [];
    const segments: Segment[] = [];
    let nextId = 1;
    for (const name of names) {
      const firstId = Number(SEGMENT.exec(name)![1]);
      const path = join(dir, name);
      const lines = readFileSync(path, 'utf8').split('\n');
      let id = firstId;
      for (const line of lines) {
        if (line === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          break; // a torn write: nothing after it was acknowledged
        }
        records.push({ id, value });
        id++;
      }
      nextId = Math.max(nextId, id);
      // An empty segment (the process died before its first write) holds nothing to replay.
      if (id === firstId) unlinkSync(path);
      else segments.push({ path, firstId, lastId: id - 1, bytes: statSync(path).size });
    }
    return { wal: new WriteAheadLog(dir, options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, nextId, segments), records };
  }

  /** Appends one record (written before this returns) and gives its id. */
  append(value: unknown): number {
    if (this.#closed) throw new Error('write-ahead log is closed');
    const line = `${JSON.stringify(value)}\n`;
    const bytes = Buffer.byteLength(line);
    const active = this.#active();
    if (active.bytes > 0 && active.bytes + bytes > this.#segmentBytes) this.#rotate();
    writeSync(this.#fd, line);
    const segment = this.#active();
    segment.bytes += bytes;
    const id = this.#nextId++;
    segment.lastId = id;
    this.#dirty = true;
    return id;
  }

  /** Makes every record appended so far durable (fdatasync, off the event loop). */
  sync(): Promise<void> {
    if (!this.#dirty || this.#closed) return Promise.resolve();
    this.#dirty = false;
    const fd = this.#fd;
    this.#syncing++;
    return new Promise((resolve, reject) =>
      fdatasync(fd, (err) => {
        if (--this.#syncing === 0) for (const old of this.#retired.splice(0)) closeSync(old);
        if (err) reject(err);
        else resolve();
      }),
    );
  }

  /** Records up to and including `throughId` are no longer needed: drops the segments they fill. */
  release(throughId: number): void {
    if (this.#closed) return;
    this.#released = Math.max(this.#released, throughId);
    while (this.#segments.length > 1 && this.#segments[0]!.lastId <= this.#released) {
      unlinkSync(this.#segments.shift()!.path);
    }
    const active = this.#active();
    if (this.#segments.length === 1 && active.lastId <= this.#released && active.bytes >= this.#segmentBytes / 4) this.#rotate();
  }

  /** Records appended and not yet released. */
  get pending(): number {
    return this.#nextId - 1 - this.#released;
  }

  get segmentCount(): number {
    return this.#segments.length;
  }

  /** Syncs and closes; unreleased records stay for the next open. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    fsyncSync(this.#fd);
    if (this.#syncing > 0) this.#retired.push(this.#fd);
    else closeSync(this.#fd);
  }

  #active(): Segment {
    return this.#segments[this.#segments.length - 1]!;
  }

  #rotate(): void {
    fsyncSync(this.#fd);
    // A sync under way may still be on this descriptor: closing it now would fail that sync.
    if (this.#syncing > 0) this.#retired.push(this.#fd);
    else closeSync(this.#fd);
    this.#fd = this.#openSegment();
    while (this.#segments.length > 1 && this.#segments[0]!.lastId <= this.#released) unlinkSync(this.#segments.shift()!.path);
  }

  #openSegment(): number {
    const firstId = this.#nextId;
    const path = join(this.#dir, `wal-${String(firstId).padStart(16, '0')}.jsonl`);
    const fd = openSync(path, 'wx', 0o600);
    this.#segments.push({ path, firstId, lastId: firstId - 1, bytes: 0 });
    // The new file's directory entry must be durable too, or a power loss could drop the file.
    const dirFd = openSync(this.#dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    return fd;
  }
}
