import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, rmSync, statfsSync, unlinkSync, writevSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { spanBlockColumnList } from './span-block.js';

/** Sends concatenated Native blocks (span-block.ts) to ClickHouse as one insert. */
export interface BlockInserter {
  /** `infile`: embedded engine reading a spool file; `body`: the request body of a server insert */
  readonly kind: 'infile' | 'body';
  insert(blocks: readonly Buffer[]): Promise<void>;
  close(): void;
}

/**
 * The embedded engine (chdb through the client's connection hook) gets the blocks through a spool
 * file: its connection turns an insert body into a JS string (which would corrupt binary Native
 * and costs a copy), while `INSERT ... FROM INFILE` reads the file with ClickHouse's own buffered
 * reader. A server gets them as the HTTP body, as ClickHouse's own clients send Native.
 */
export function blockInserterFor(client: ClickHouseClient, table: string, spoolDir?: string): BlockInserter {
  return isEmbedded(client) ? new SpoolFileInserter(client, table, spoolDir) : new BodyInserter(client, table);
}

/** chdb's Connection names itself; @clickhouse/client keeps the connection it was given. */
export function isEmbedded(client: ClickHouseClient): boolean {
  const connection = (client as unknown as { connection?: { connectionName?: unknown } }).connection;
  return connection?.connectionName === 'chdb';
}

class BodyInserter implements BlockInserter {
  readonly kind = 'body';
  readonly #query: string;

  constructor(
    private readonly client: ClickHouseClient,
    table: string,
  ) {
    this.#query = `INSERT INTO ${table} (${spanBlockColumnList()}) FORMAT Native`;
  }

  async insert(blocks: readonly Buffer[]): Promise<void> {
    const result = await this.client.exec({ query: this.#query, values: Readable.from(blocks, { objectMode: false }) });
    result.stream.resume();
  }

  close(): void {}
}

/** A spool file and its open descriptor (tmpfs: written synchronously) or handle (disk). */
type SpoolFile = { path: string; fd: number } | { path: string; handle: FileHandle };

class SpoolFileInserter implements BlockInserter {
  readonly kind = 'infile';
  readonly #columns = spanBlockColumnList();
  #root: string | undefined;
  /** the spool directory is in memory (tmpfs): write synchronously, see #write */
  #inMemory = false;
  /** this inserter's file names: process id and a random part, then a sequence number */
  readonly #prefix = `breakwater-spool-${process.pid}-${randomBytes(6).toString('hex')}-`;
  #sequence = 0;
  /** files no insert is using; one per insert that ever ran at once */
  readonly #idle: SpoolFile[] = [];
  #closed = false;

  constructor(
    private readonly client: ClickHouseClient,
    private readonly table: string,
    private readonly spoolDir: string | undefined,
  ) {}

  /**
   * A file per concurrent insert, written over by the next insert and removed by close(). A fresh
   * file per insert cost its pages: into tmpfs, writing a 4 MB block to a new file and unlinking
   * it took 1.7-2.0 ms of the main thread against 0.4 ms for writing it over an existing one
   * (scratch loop), on the path every acknowledgement waits on. Files are created exclusively
   * ('wx': never through a link planted in a shared directory) and readable by this user only; a
   * crashed process's files are removed at the next start (removeOrphans).
   */
  async #acquire(): Promise<SpoolFile> {
    const idle = this.#idle.pop();
    if (idle !== undefined) return idle;
    if (this.#root === undefined) {
      this.#root = this.spoolDir ?? defaultSpoolRoot();
      this.#inMemory = isTmpfs(this.#root);
      removeOrphans(this.#root);
    }
    const path = join(this.#root, `${this.#prefix}${++this.#sequence}.native`);
    return this.#inMemory ? { path, fd: openSync(path, 'wx', 0o600) } : { path, handle: await open(path, 'wx', 0o600) };
  }

  async insert(blocks: readonly Buffer[]): Promise<void> {
    const file = await this.#acquire();
    try {
      await this.#write(file, blocks);
      await this.client.command({ query: `INSERT INTO ${this.table} (${this.#columns}) FROM INFILE ${sqlString(file.path)} FORMAT Native` });
    } finally {
      if (this.#closed) removeSpoolFile(file);
      else this.#idle.push(file);
    }
  }

  /**
   * The blocks from the file's start, cut to their length. Into tmpfs, a synchronous write is a
   * memory copy (~0.4 ms per 4 MB batch here), while each async file operation waits its turn in
   * libuv's small thread pool behind the running insert, with the CPU saturated: measured 17 ms
   * for the open and 24 ms for the write, per insert. On a disk, the writes stay off the event loop.
   */
  async #write(file: SpoolFile, blocks: readonly Buffer[]): Promise<void> {
    const expected = blocks.reduce((sum, block) => sum + block.length, 0);
    let written: number;
    if ('fd' in file) {
      written = writevSync(file.fd, blocks as Buffer[], 0);
      ftruncateSync(file.fd, expected);
    } else {
      written = (await file.handle.writev(blocks as Buffer[], 0)).bytesWritten;
      await file.handle.truncate(expected);
    }
    if (written !== expected) throw new Error(`spool file short write: ${written} of ${expected} bytes`);
  }

  /** Removes the idle files; one still in an insert is removed when that insert ends. */
  close(): void {
    this.#closed = true;
    for (const file of this.#idle.splice(0)) removeSpoolFile(file);
  }
}

function removeSpoolFile(file: SpoolFile): void {
  if ('fd' in file) closeSync(file.fd);
  else void file.handle.close().catch(() => {});
  unlinkQuietly(file.path);
}

const SPOOL_FILE = /^breakwater-spool-(\d+)-[0-9a-f]+-\d+\.native$/;

/**
 * A process killed during an insert leaves its spool file (in tmpfs: memory). The name carries
 * its pid: files of processes that no longer exist are removed; a live process's are its own.
 */
function removeOrphans(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = SPOOL_FILE.exec(name)?.[1];
    if (pid !== undefined && !processExists(Number(pid))) unlinkQuietly(join(root, name));
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, not ours to signal
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone (or never written): nothing to clean up
  }
}

function sqlString(text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

const SHM = '/dev/shm';
const TMPFS_MAGIC = 0x01021994;

function isTmpfs(dir: string): boolean {
  try {
    return statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/** tmpfs when the machine has one: spool files only hold the blocks of inserts under way and need never touch a disk. */
function defaultSpoolRoot(): string {
  try {
    const probe = mkdtempSync(`${SHM}/breakwater-probe-`);
    rmSync(probe, { recursive: true, force: true });
    return SHM;
  } catch {
    return tmpdir();
  }
}
