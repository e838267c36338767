// The embedded ClickHouse's threads are lowered in priority; the main thread and Node's own threads
// (libuv's pool, V8's workers) are not. Read back from /proc, as the scheduler sees them.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pbkdf2 } from 'node:crypto';
import { getPriority, setPriority } from 'node:os';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openStore, type Store } from '../../src/storage/clickhouse.js';
import { keepStorageThreadsLow, lowerStorageThreads } from '../../src/storage/storage-thread-priority.js';
import { tempDataDir } from '../helpers/service.js';

interface Thread {
  tid: number;
  name: string;
  nice: number;
}

/** every thread of this process: name and nice value */
function threads(): Thread[] {
  const out: Thread[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      out.push({ tid: Number(tid), name: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(), nice: getPriority(Number(tid)) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const linux = process.platform === 'linux';
let store: Store;
/** Node's threads, as they were before ClickHouse started: tid -> nice */
const nodeThreads = new Map<number, number>();

beforeAll(async () => {
  if (!linux) return;
  // Make Node start the threads it starts lazily (libuv's pool) before the engine exists.
  await readFile('/proc/self/stat');
  await promisify(pbkdf2)('secret', 'salt', 1_000, 32, 'sha256');
  for (const t of threads()) nodeThreads.set(t.tid, t.nice);
  store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir: tempDataDir('bw-nice-') });
  await store.client.command({ query: 'CREATE TABLE t (n UInt64) ENGINE = MergeTree ORDER BY n' });
  await store.client.command({ query: 'INSERT INTO t SELECT number FROM numbers(100000)' });
  await (await store.client.query({ query: 'SELECT sum(n) FROM t SETTINGS max_threads = 4' })).text();
});

afterAll(async () => {
  await store?.close();
});

/** threads ClickHouse started (anything that was not there before the store opened) */
const clickhouseThreads = () => threads().filter((t) => !nodeThreads.has(t.tid));

function expectNodeThreadsUntouched(): void {
  const now = new Map(threads().map((t) => [t.tid, t]));
  for (const [tid, nice] of nodeThreads) {
    const t = now.get(tid);
    if (t) expect(t.nice, `Node's thread ${t.name} (${tid})`).toBe(nice);
  }
}

describe.runIf(linux)('storage thread priority', () => {
  it("lowers ClickHouse's threads, and only those", () => {
    expect([...nodeThreads.values()].every((nice) => nice === 0)).toBe(true);
    const names = new Set(threads().filter((t) => nodeThreads.has(t.tid)).map((t) => t.name));
    expect(names).toContain('libuv-worker');
    expect(clickhouseThreads().map((t) => t.name)).toContain('ThreadPool'); // ran the SELECT

    expect(lowerStorageThreads(19)).toBeGreaterThan(0);
    expectNodeThreadsUntouched();
    for (const t of clickhouseThreads()) expect(t.nice, `ClickHouse's thread ${t.name} (${t.tid})`).toBe(19);
    // ClickHouse names some of its threads as Node names its main thread; those are lowered too.
    const mainName = threads().find((t) => t.tid === process.pid)!.name;
    const namesakes = clickhouseThreads().filter((t) => t.name === mainName);
    for (const t of namesakes) expect(t.nice, `${t.name} (${t.tid})`).toBe(19);
    expect(lowerStorageThreads(19)).toBe(0); // nothing left to change
  });

  it('sweeps again and again (ClickHouse starts threads as it goes), and stops when asked', async () => {
    const stop = keepStorageThreadsLow(19, 50);
    await store.client.command({ query: 'INSERT INTO t SELECT number FROM numbers(100000, 100000)' });
    await (await store.client.query({ query: 'SELECT n % 7 AS k, count() FROM t GROUP BY k SETTINGS max_threads = 8' })).text();
    await vi.waitFor(() => expect(clickhouseThreads().every((t) => t.nice === 19)).toBe(true));
    expectNodeThreadsUntouched();
    if (process.getuid?.() === 0) {
      // A thread put back at 0 (only root may) is lowered again by the next sweep...
      const victim = clickhouseThreads()[0]!;
      setPriority(victim.tid, 0);
      await vi.waitFor(() => expect(getPriority(victim.tid)).toBe(19));
      // ...and no longer once stopped.
      stop();
      setPriority(victim.tid, 0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(getPriority(victim.tid)).toBe(0);
    }
    stop();
  });

  it('does nothing at nice 0', () => {
    const before = threads().map((t) => t.nice);
    keepStorageThreadsLow(0)();
    expect(threads().map((t) => t.nice)).toEqual(before);
  });
});
