// The embedded ClickHouse runs in this process, on threads of its own (inserts, merges, background
// schedules), and on a small machine they compete for the same cores as the main thread, which
// holds the decision path. Measured on 2 cores (bench, decision latency at half the maximum load):
// with every thread at the same priority the scheduler often runs ClickHouse threads while a
// request waits for its decision, and p99 was 12-20 ms; with ClickHouse's threads at nice 19 it was
// 7-8 ms, for the same throughput. Storage work is queued and acknowledged later anyway, so it is
// the one to wait.
//
// ClickHouse names its threads (MergeMutate, BgSchPool, ThreadPool, ...); Node's own threads (the
// main thread, libuv's pool, V8's helpers) keep the process's name and are left alone. Threads come
// and go with ClickHouse's pools, so the sweep repeats. Raising a nice value needs no privilege;
// Linux only (elsewhere, and with nice 0, this does nothing).
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

const TASKS = '/proc/self/task';

function threadName(tid: string): string | undefined {
  try {
    return readFileSync(`${TASKS}/${tid}/comm`, 'utf8').trim();
  } catch {
    return undefined; // the thread has exited
  }
}

/** Sets `nice` on every thread of this process named otherwise than the main thread; returns how many it changed. */
export function lowerStorageThreads(nice: number): number {
  let tids: string[];
  try {
    tids = readdirSync(TASKS);
  } catch {
    return 0; // not Linux
  }
  const own = threadName(String(process.pid));
  let changed = 0;
  for (const tid of tids) {
    if (Number(tid) === process.pid) continue;
    const name = threadName(tid);
    if (name === undefined || name === own) continue;
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
