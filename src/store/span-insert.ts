import { mkdtempSync, rmSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
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

class SpoolFileInserter implements BlockInserter {
  readonly kind = 'infile';
  readonly #columns = spanBlockColumnList();
  #dir: string | undefined;
  #sequence = 0;

  constructor(
    private readonly client: ClickHouseClient,
    private readonly table: string,
    private readonly spoolDir: string | undefined,
  ) {}

  /** A private directory per writer: names are ours alone, and nothing else is ever read from it. */
  #directory(): string {
    this.#dir ??= mkdtempSync(join(this.spoolDir ?? defaultSpoolRoot(), 'breakwater-spool-'));
    return this.#dir;
  }

  async insert(blocks: readonly Buffer[]): Promise<void> {
    const path = join(this.#directory(), `${++this.#sequence}.native`);
    const file = await open(path, 'wx', 0o600);
    try {
      try {
        const expected = blocks.reduce((sum, block) => sum + block.length, 0);
        const { bytesWritten } = await file.writev(blocks as Buffer[]);
        if (bytesWritten !== expected) throw new Error(`spool file short write: ${bytesWritten} of ${expected} bytes`);
      } finally {
        await file.close();
      }
      await this.client.command({ query: `INSERT INTO ${this.table} (${this.#columns}) FROM INFILE ${sqlString(path)} FORMAT Native` });
    } finally {
      await unlink(path).catch(() => {});
    }
  }

  close(): void {
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }
}

function sqlString(text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** tmpfs when the machine has one: spool files live for one insert and need never touch a disk. */
function defaultSpoolRoot(): string {
  try {
    const probe = mkdtempSync('/dev/shm/breakwater-probe-');
    rmSync(probe, { recursive: true, force: true });
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}
