// The incident phase: a trip storm under the built-in default policy. 100 tenants, requests of
// 1,000 spans from 16 senders, every request starting ten new runs, each over the free tier (33
// model calls and 33k tokens in a burst): every run trips its breaker, and every tenant its own.
// The same load against bench/policy.yaml, where nothing trips, is the calm baseline; the ratio of
// the two is what the storm costs ingest. Each phase runs `breakwater serve` in a process of its
// own (a fresh data directory; chdb binds one per process), so SIGTERM after it is timed as an
// operator would see it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChildService, type ChildService } from '../test/helpers/child-service.js';
import { loadFromChild, type LoadResult } from './load-generator.js';

export interface IncidentPhase {
  policy: 'default' | 'calm';
  paced: boolean;
  load: LoadResult;
  /** spans acknowledged per second */
  rate: number;
  /** CPU of the Breakwater process (all its threads, ClickHouse's included) per acknowledged span */
  cpuUsPerSpan: number;
  /** audit events ClickHouse confirmed during the load, per second */
  auditPerSecond: number;
  coalesced: number;
  /** decision latency p99, as the upper bound of its histogram bucket */
  decisionP99Ms: number;
  /** SIGTERM right after the load to the process's exit */
  sigtermMs: number;
  exitCode: number | null;
}

const SPANS_PER_REQUEST = 1_000;
const TENANTS = 100;
const SENDERS = 16;

/** User and system CPU of a process so far, from /proc (Linux), ms. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function metricsText(server: ChildService): Promise<string> {
  return (await fetch(`${server.graphqlUrl}/metrics`)).text();
}

function counter(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

/** The smallest bucket bound holding 99 % of the histogram's observations (ms). */
function histogramP99Ms(before: string, after: string, name: string): number {
  const buckets = (text: string) =>
    new Map(
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}_bucket{`))
        .map((l) => [/le="([^"]+)"/.exec(l)![1]!, Number(l.split(' ').at(-1))] as const),
    );
  const b0 = buckets(before);
  const b1 = buckets(after);
  const total = (b1.get('+Inf') ?? 0) - (b0.get('+Inf') ?? 0);
  if (total <= 0) return NaN;
  for (const [le, count] of b1) {
    if (count - (b0.get(le) ?? 0) >= total * 0.99) return le === '+Inf' ? Infinity : Number(le) * 1000;
  }
  return Infinity;
}

/**
 * One phase on a fresh process: as fast as 16 senders are answered, or paced at `spansPerSecond`
 * (open loop, up to 64 requests in flight), for `seconds`.
 */
export async function runIncidentPhase(policy: 'default' | 'calm', seconds: number, spansPerSecond?: number): Promise<IncidentPhase> {
  const dataDir = mkdtempSync(join(tmpdir(), `bw-incident-${policy}-`));
  // The default policy: a policy file that sets nothing leaves the built-in tiers in force.
  const config = policy === 'calm' ? 'bench/policy.yaml' : join(dataDir, 'breakwater.yaml');
  if (policy === 'default') writeFileSync(config, '# nothing set: the built-in default policy\n');
  const server = await startChildService(['--data-dir', dataDir], { BREAKWATER_CONFIG: config });
  try {
    const before = await metricsText(server);
    const cpuBefore = processCpuMs(server.process.pid!);
    const load = await loadFromChild({
      url: server.otlpUrl,
      encoding: 'protobuf',
      gzip: false,
      requests: spansPerSecond === undefined ? 1_000_000 : Math.max(4, Math.round((spansPerSecond * seconds) / SPANS_PER_REQUEST)),
      maxSeconds: seconds,
      spansPerRequest: SPANS_PER_REQUEST,
      concurrency: spansPerSecond === undefined ? SENDERS : 64,
      ...(spansPerSecond === undefined ? {} : { spansPerSecond }),
      tenants: TENANTS,
      tenantPrefix: 'incident-',
      freshRuns: true,
    });
    const cpuMs = processCpuMs(server.process.pid!) - cpuBefore;
    const after = await metricsText(server);
    const started = performance.now();
    server.process.kill('SIGTERM');
    const exitCode = await server.exited;
    return {
      policy,
      paced: spansPerSecond !== undefined,
      load,
      rate: load.spansAcked / load.seconds,
      cpuUsPerSpan: (cpuMs * 1000) / load.spansAcked,
      auditPerSecond: (counter(after, 'breakwater_audit_events_written_total') - counter(before, 'breakwater_audit_events_written_total')) / load.seconds,
      coalesced: counter(after, 'breakwater_audit_coalesced_total') - counter(before, 'breakwater_audit_coalesced_total'),
      decisionP99Ms: histogramP99Ms(before, after, 'breakwater_decision_latency_seconds'),
      sigtermMs: performance.now() - started,
      exitCode,
    };
  } finally {
    if (server.process.exitCode === null) server.process.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}
