// The embedded ClickHouse's threads are lowered in priority; the main thread and Node's own threads
// are not. Read back from /proc, as the scheduler sees them.
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openStore, type Store } from '../../src/storage/clickhouse.js';
import { keepStorageThreadsLow, lowerStorageThreads } from '../../src/storage/storage-thread-priority.js';
import { tempDataDir } from '../helpers/service.js';

let store: Store;

beforeAll(async () => {
  store = await openStore({ url: undefined, user: '', password: '', database: 'default', dataDir: tempDataDir('bw-nice-') });
  await store.client.command({ query: 'CREATE TABLE t (n UInt64) ENGINE = MergeTree ORDER BY n' });
  await store.client.command({ query: 'INSERT INTO t SELECT number FROM numbers(100000)' });
});

afterAll(async () => {
  await store?.close();
});

/** every thread of this process: name and nice value */
function threads(): { tid: number; name: string; nice: number }[] {
  const out: { tid: number; name: string; nice: number }[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      out.push({ tid: Number(tid), name: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(), nice: getPriority(Number(tid)) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

describe.runIf(process.platform === 'linux')('storage thread priority', () => {
  it("lowers ClickHouse's named threads, and only those", () => {
    const main = threads().find((t) => t.tid === process.pid)!;
    const named = threads().filter((t) => t.name !== main.name);
    expect(named.length).toBeGreaterThan(0);
    expect(named.some((t) => t.nice !== 7)).toBe(true);
    expect(lowerStorageThreads(7)).toBeGreaterThan(0);
    for (const t of threads()) expect(t.nice, `${t.name} (${t.tid})`).toBe(t.name === main.name ? main.nice : 7);
    expect(getPriority(process.pid)).toBe(main.nice);
    expect(lowerStorageThreads(7)).toBe(0); // nothing left to change
  });

  it('sweeps again and again (ClickHouse starts threads as it goes), and stops when asked', async () => {
    const mainName = threads().find((t) => t.tid === process.pid)!.name;
    const stop = keepStorageThreadsLow(9, 50);
    await store.client.command({ query: 'SELECT sum(n) FROM t SETTINGS max_threads = 4' });
    const named = () => threads().filter((t) => t.name !== mainName);
    await vi.waitFor(() => expect(named().every((t) => t.nice === 9)).toBe(true));
    if (process.getuid?.() === 0) {
      // A thread put back at 0 (only root may) is lowered again by the next sweep...
      const victim = named()[0]!;
      setPriority(victim.tid, 0);
      await vi.waitFor(() => expect(getPriority(victim.tid)).toBe(9));
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
