// The embedded ClickHouse runs in this process, on threads of its own (inserts, merges, background
// schedules), and on a small machine they compete for the same cores as the main thread, which
// holds the decision path. Measured on 2 cores (bench, decision latency at half the maximum load):
// with every thread at the same priority the scheduler often runs ClickHouse threads while a
// request waits for its decision, and p99 was 12-20 ms; with ClickHouse's threads at nice 19 it was
// 7-8 ms, for the same throughput. Storage work is queued and acknowledged later anyway, so it is
// the one to wait.
//
// ClickHouse's threads are those that appear after the engine starts and carry no Node thread name,
// because names alone cannot tell them apart (ClickHouse names some of its threads MainThread and
// renames the libuv threads it runs queries on). Threads come and go with ClickHouse's pools, so
// the sweep repeats. Raising a nice value needs no privilege; Linux only (elsewhere, and with
// nice 0, this does nothing).
import { access, readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

const TASKS = '/proc/self/task';

/** Names Node gives the threads it may still start later (workers, inspector, tracing). */
const NODE_THREAD_NAMES = new Set(['node', 'libuv-worker', 'WorkerThread', 'SignalInspector', 'DelayedTaskSche', 'PerfettoTrace']);
const NODE_THREAD_PREFIXES = ['V8', 'node-'];

/** The threads that existed before the embedded engine started; undefined until noted. */
let nodeThreads: ReadonlySet<string> | undefined;

function listThreads(): string[] | undefined {
  try {
    return readdirSync(TASKS);
  } catch {
    return undefined; // not Linux
  }
}

function threadName(tid: string): string | undefined {
  try {
    return readFileSync(`${TASKS}/${tid}/comm`, 'utf8').trim();
  } catch {
    return undefined; // the thread has exited
  }
}

function isNodeThreadName(name: string): boolean {
  return NODE_THREAD_NAMES.has(name) || NODE_THREAD_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** Notes this process's threads as Node's; call before the embedded engine starts (later calls do nothing). */
export function noteNodeThreads(): void {
  if (nodeThreads) return;
  // libuv starts its pool on first use, maybe by the engine's first query: start it now so that it counts as Node's.
  access(TASKS, () => {});
  const tids = listThreads();
  if (tids) nodeThreads = new Set(tids);
}

/** Sets `nice` on every thread ClickHouse started (none before noteNodeThreads); returns how many it changed. */
export function lowerStorageThreads(nice: number): number {
  const tids = listThreads();
  if (!tids || !nodeThreads) return 0;
  let changed = 0;
  for (const tid of tids) {
    if (Number(tid) === process.pid || nodeThreads.has(tid)) continue;
    const name = threadName(tid);
    if (name === undefined || isNodeThreadName(name)) continue;
    try {
      if (getPriority(Number(tid)) === nice) continue;
      setPriority(Number(tid), nice);
      changed++;
    } catch {
      // exited between the listing and now
    }
  }
  return changed;
}

/** Sweeps now and every `everyMs`; call the returned function to stop. */
export function keepStorageThreadsLow(nice: number, everyMs = 1_000): () => void {
  if (nice <= 0) return () => {};
  lowerStorageThreads(nice);
  const timer = setInterval(() => lowerStorageThreads(nice), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
