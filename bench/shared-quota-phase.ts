// The shared-quota bench phase, in a process of its own (chdb binds one data directory per process):
// a Breakwater with its default settings under SHARED_QUOTA_POLICY, the scenario run with the
// runaway on the SDK and then on plain OpenTelemetry at each exporter setting tried. Prints the
// per-variant summaries as JSON.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchService } from './bench-service.js';
import { isEntry, runChild } from './child.js';
import { percentile } from './decision-path.js';
import { runSharedQuota, SHARED_QUOTA_POLICY, type RunawayAgent } from './shared-quota.js';

export interface VariantSpec {
  name: string;
  agent: RunawayAgent;
  runs: number;
}

export interface VariantSummary {
  name: string;
  runs: number;
  /** runs that made no model call after the crossing */
  cleanRuns: number;
  stepsAfterMedian: number;
  stepsAfterMax: number;
  /** tokens after the crossing as a share of the shared quota, % */
  tokenShareMedian: number;
  tokenShareMax: number;
  sdkHaltP50: number;
  sdkHaltP99: number;
  exportP50: number;
  exportP99: number;
  serverHaltP50: number;
  serverHaltP99: number;
  /** SDK runs whose crossing span had to wait for an export slot (all awaiting Breakwater's answer) */
  slotsFullRuns: number;
  steadyCalls: number;
  steady429: number;
  steadyBeyondWarn: number;
}

/** The plain-OpenTelemetry settings tried: the SDK's defaults, then shorter schedule delays, then export per span. */
export function variants(runs: number, plainRuns: number): VariantSpec[] {
  return [
    { name: 'Breakwater SDK, defaults', agent: { kind: 'sdk' }, runs },
    { name: 'plain OTel, BatchSpanProcessor defaults (OTEL_BSP_SCHEDULE_DELAY=5000, OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512)', agent: { kind: 'otel' }, runs },
    { name: 'plain OTel, OTEL_BSP_SCHEDULE_DELAY=200', agent: { kind: 'otel', scheduledDelayMillis: 200 }, runs: plainRuns },
    { name: 'plain OTel, OTEL_BSP_SCHEDULE_DELAY=50', agent: { kind: 'otel', scheduledDelayMillis: 50 }, runs: plainRuns },
    { name: 'plain OTel, OTEL_BSP_SCHEDULE_DELAY=1', agent: { kind: 'otel', scheduledDelayMillis: 1 }, runs: plainRuns },
  ];
}

/** Runs each variant on one fresh service, one after another. */
export async function runPhase(specs: readonly VariantSpec[]): Promise<VariantSummary[]> {
  const policyFile = join(tmpdir(), `bw-shared-quota-${process.pid}.yaml`);
  writeFileSync(policyFile, SHARED_QUOTA_POLICY);
  const bench = await startBenchService('shared-quota', [], policyFile);
  const out: VariantSummary[] = [];
  try {
    for (const spec of specs) {
      const result = await runSharedQuota(bench.service, spec.agent, spec.runs);
      const of = (pick: (r: (typeof result.runs)[number]) => number | undefined) => result.runs.map(pick).filter((v): v is number => v !== undefined);
      const share = of((r) => (r.tokensAfter / result.quotaTokens) * 100);
      const steps = of((r) => r.stepsAfter);
      out.push({
        name: spec.name,
        runs: result.runs.length,
        cleanRuns: steps.filter((s) => s === 0).length,
        stepsAfterMedian: percentile(steps, 50),
        stepsAfterMax: Math.max(...steps),
        tokenShareMedian: percentile(share, 50),
        tokenShareMax: Math.max(...share),
        sdkHaltP50: percentile(of((r) => r.sdkHaltMs), 50),
        sdkHaltP99: percentile(of((r) => r.sdkHaltMs), 99),
        exportP50: percentile(of((r) => r.exportMs), 50),
        exportP99: percentile(of((r) => r.exportMs), 99),
        serverHaltP50: percentile(of((r) => r.serverHaltMs), 50),
        serverHaltP99: percentile(of((r) => r.serverHaltMs), 99),
        slotsFullRuns: result.runs.filter((r) => r.queuedAtCrossing !== undefined && r.queuedAtCrossing > 0).length,
        steadyCalls: result.steadyCalls,
        steady429: result.steady429,
        steadyBeyondWarn: result.steadyBeyondWarn,
      });
    }
  } finally {
    await bench.stop();
  }
  return out;
}

/** The phase in a child process. */
export function sharedQuotaFromChild(runs: number, plainRuns: number): Promise<VariantSummary[]> {
  return runChild<VariantSummary[]>('bench/shared-quota-phase.ts', [String(runs), String(plainRuns)]);
}

if (isEntry(import.meta.url)) {
  // The OTLP exporter refuses past its 30 concurrent exports and BatchSpanProcessor lets that
  // escape: a batch the plain agent lost, not the harness's failure.
  const lost = (err: unknown) => {
    if (!String(err).includes('Concurrent export limit reached')) throw err;
    process.stderr.write(`plain OTel export lost: ${String(err)}\n`);
  };
  process.on('unhandledRejection', lost);
  process.on('uncaughtException', lost);
  const [runs, plainRuns] = process.argv.slice(2).map(Number);
  const summaries = await runPhase(variants(runs!, plainRuns!));
  process.stdout.write(`${JSON.stringify(summaries)}\n`);
  process.exit(0);
}
