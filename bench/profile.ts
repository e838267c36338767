// `npm run bench:profile [-- --senders 32 --requests 300 [--heap | --heap-old]]` (NICE=n sets --storage-nice, SERVICE_ARGS='--flag value ...' adds service flags): where the server's CPU goes under
// sustained protobuf ingest. Breakwater runs in this process on the embedded store, load comes
// from the separate load generator, and the V8 CPU profiler (what `node --cpu-prof` runs) samples
// the main thread during the load only. Prints the process CPU per span (main thread, ClickHouse's
// threads, GC helpers), the main thread's share of it, and the main thread's self time grouped by
// module and by function; writes bench/profile.cpuprofile for Chrome DevTools or speedscope.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus } from 'node:os';
import { relative } from 'node:path';
import { startBenchService } from './bench-service.js';
import { loadFromChild } from './load-generator.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface HeapNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: HeapNode[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const senders = flag('--senders', 32);
const requests = flag('--requests', 300);
/** sample allocations (V8's sampling heap profiler) instead of CPU: where the garbage comes from */
const heap = args.includes('--heap') || args.includes('--heap-old');
/** only what outlived the young generation (promoted, then live or collected by a full GC) */
const heapOld = args.includes('--heap-old');

/** A frame's module: a path under the project, a Node internal, or V8's own pseudo-frames. */
function moduleOf(url: string, functionName: string): string {
  if (url === '') return `(${functionName.replace(/[()]/g, '') || 'native'})`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const path = relative(process.cwd(), url.replace(/^file:\/\//, ''));
  return path.startsWith('node_modules/') ? path.split('/').slice(0, path.split('/')[1]!.startsWith('@') ? 3 : 2).join('/') : path;
}

function table(title: string, rows: Map<string, number>, total: number, top: number): string {
  const sorted = [...rows].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [`${title}`, ...sorted.map(([name, us]) => `  ${((us / total) * 100).toFixed(1).padStart(5)} %  ${name}`)].join('\n');
}

const bench = await startBenchService('profile', ['--tenant-ingest-rate', '0', '--storage-nice', process.env.NICE ?? '19', ...(process.env.SERVICE_ARGS?.split(' ').filter(Boolean) ?? [])]);
const service = bench.service;
const load = (n: number) => loadFromChild({ url: service.otlpUrl, encoding: 'protobuf', gzip: false, requests: n, spansPerRequest: 500, concurrency: senders, tenants: 50 });

/** inserts so far, their rows and their seconds (from the service's own histograms) */
async function flushTotals(): Promise<{ inserts: number; rows: number; seconds: number }> {
  const total = async (metric: typeof service.metrics.flushSpans, name: string) =>
    (await metric.get()).values.find((v) => v.metricName === name)?.value ?? 0;
  return {
    inserts: await total(service.metrics.flushSpans, 'breakwater_flush_batch_spans_count'),
    rows: await total(service.metrics.flushSpans, 'breakwater_flush_batch_spans_sum'),
    seconds: await total(service.metrics.flushSeconds, 'breakwater_flush_duration_seconds_sum'),
  };
}

/**
 * CPU seconds so far of each live thread of this process, summed by thread name (Linux; empty
 * elsewhere). Threads that exit in between lose their time, so totals are a lower bound.
 */
function threadCpuByName(): Map<string, number> {
  const byName = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return byName;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // the name sits in parentheses and may hold spaces; utime and stime are fields 14 and 15
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      const key = Number(tid) === process.pid ? '(main thread)' : name.replace(/\d+$/, '');
      byName.set(key, (byName.get(key) ?? 0) + ticks / 100);
    } catch {
      // exited between the listing and now
    }
  }
  return byName;
}

await load(Math.max(senders * 2, 40)); // warm-up: JIT, pools, first parts
const session = new Session();
session.connect();
if (heap) {
  await session.post('HeapProfiler.enable');
  // every ~32 KB allocated, kept or not: the young generation's garbage is what the GC time is
  await session.post('HeapProfiler.startSampling', { samplingInterval: 32 * 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !heapOld });
} else {
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
}
const cpuBefore = process.cpuUsage();
const threadsBefore = threadCpuByName();
const flushesBefore = await flushTotals();
const result = await load(requests);
const cpu = process.cpuUsage(cpuBefore);
const threadsAfter = threadCpuByName();
const flushesAfter = await flushTotals();
if (heap) {
  const { profile: sampled } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
  session.disconnect();
  await bench.stop();
  const bySite = new Map<string, number>();
  const walk = (node: HeapNode) => {
    const { functionName, url } = node.callFrame;
    const site = `${functionName || '(anonymous)'}  ${moduleOf(url, functionName)}`;
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    node.children.forEach(walk);
  };
  walk(sampled.head);
  const total = [...bySite.values()].reduce((a, b) => a + b, 0);
  console.log(`load: ${senders} senders, ${requests} requests of 500 spans: ${Math.round(result.spansAcked / result.seconds).toLocaleString('en-US')} spans/s`);
  console.log(`allocated on the JS heap per span (sampled): ${Math.round(total / result.spansAcked)} bytes`);
  console.log(table('allocated bytes by function:', bySite, total, 30));
  process.exit(0);
}
const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
session.disconnect();
await bench.stop();
writeFileSync('bench/profile.cpuprofile', JSON.stringify(profile));

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const byModule = new Map<string, number>();
const byFunction = new Map<string, number>();
let sampled = 0;
let idle = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  sampled += us;
  if (functionName === '(idle)') {
    idle += us;
    return;
  }
  const module = moduleOf(url, functionName);
  byModule.set(module, (byModule.get(module) ?? 0) + us);
  // Line numbers are left out: under tsx they point into the transpiled module, not the source.
  const fn = `${functionName || '(anonymous)'}  ${module}${url.startsWith('node:') ? `:${lineNumber + 1}` : ''}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
});
const busy = sampled - idle;
const spans = result.spansAcked;
console.log(`machine: ${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown'}, Node ${process.version}`);
console.log(`load: ${senders} senders, ${requests} requests of 500 spans: ${Math.round(spans / result.seconds).toLocaleString('en-US')} spans/s, statuses ${JSON.stringify(result.statusCounts)}`);
console.log(`process CPU per span (main thread + ClickHouse threads + GC helpers): ${((cpu.user + cpu.system) / spans).toFixed(1)} µs`);
const inserts = flushesAfter.inserts - flushesBefore.inserts;
console.log(
  `inserts: ${inserts}, ${Math.round((flushesAfter.rows - flushesBefore.rows) / inserts).toLocaleString('en-US')} rows each on average, ` +
    `${(((flushesAfter.seconds - flushesBefore.seconds) / inserts) * 1000).toFixed(0)} ms each (ClickHouse busy ${(((flushesAfter.seconds - flushesBefore.seconds) / result.seconds) * 100).toFixed(0)} % of the time)`,
);
console.log(`main thread busy per span: ${(busy / spans).toFixed(1)} µs (${((busy / sampled) * 100).toFixed(0)} % of the wall time); the rest of the process CPU ran on other threads`);
const threadUs = new Map([...threadsAfter].map(([name, s]) => [name, ((s - (threadsBefore.get(name) ?? 0)) * 1e6) / spans]));
console.log(
  `process CPU per span by thread name (µs; threads that exited during the load are missing):\n${[...threadUs]
    .filter(([, us]) => us >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => `  ${us.toFixed(2).padStart(6)}  ${name}`)
    .join('\n')}`,
);
console.log(table('main thread self time by module:', byModule, busy, 25));
console.log(table('main thread self time by function:', byFunction, busy, 30));
console.log('profile written to bench/profile.cpuprofile');
