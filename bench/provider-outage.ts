// The provider-outage scenario (issue 24): tenants on one fallback ladder call a mock provider
// that answers 503 on the primary for a while, then heals. Each agent reads its run's decision
// before every call (as the SDK's checkpoint() does from its cache) and calls the tier it names;
// every call's span is exported over OTLP as it ends. What counts: how many calls found their run
// HALTed (none should, with a fallback permitted), and how long after the heal every tenant is back
// on tier 0 and stays there.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Service } from '../src/app/service.js';
import { startBenchService } from './bench-service.js';
import { isEntry, runChild } from './child.js';

export const LADDER = [
  { tier: 0, provider: 'openai', model: 'gpt-4o' },
  { tier: 1, provider: 'azure.ai.openai', model: 'gpt-4o' },
  { tier: 3, provider: 'openai', model: 'gpt-4o-mini' },
] as const;

/** breaker waits and recovery windows, at their caps: the longest a healed provider can wait for its tenants */
export const MAX_WAIT_MS = 2_000;
export const MAX_WINDOW_MS = 2_000;

/**
 * Tenant and run error ratios as the free tier has them (the figure would be HALTs otherwise);
 * the rate and spend thresholds lifted, so that only errors could halt these agents.
 */
export const PROVIDER_OUTAGE_POLICY = `
defaultTier: outage
tiers:
  outage:
    extends: free
    run: { tokenVelocity10s: 1000000000000, tokenVelocity60s: 1000000000000, modelCallsPerMinute: 1000000000000, stepCount: 1000000000000, durationSeconds: 1000000000000, costPerMinuteUsd: 1000000000000, costUsd: 1000000000000 }
    tenant: { tokenVelocity60s: 1000000000000, modelCallsPerMinute: 1000000000000, costPerMinuteUsd: 1000000000000 }
degradation:
  providerHealth: { minimumCalls: 5, slidingWindowSize: 20, waitDurationOpenMs: 1000, maxWaitDurationMs: ${MAX_WAIT_MS}, permittedCallsHalfOpen: 3, sharedMinTenants: 2 }
  defaults:
    tiers:
${LADDER.map((e) => `      - { tier: ${e.tier}, provider: ${e.provider}, model: ${e.model} }`).join('\n')}
    recovery: { windowMs: 1000, maxWindowMs: ${MAX_WINDOW_MS}, probeCalls: 3 }
`;

export interface OutageSpec {
  tenants: number;
  /** the first half of the tenants run this many agent loops each, the rest one */
  busyLoops: number;
  calmMs: number;
  stormMs: number;
  /** how long to watch after every tenant is back on tier 0 */
  watchMs: number;
  /** gives up waiting for the recovery after this long */
  recoveryCapMs: number;
}

export interface OutageResult {
  /** calls the agents tried from the storm's start to the end of the watch */
  requests: number;
  /** of those, found their run HALTed */
  halted: number;
  /** tenants that left tier 0 during the storm */
  degradedTenants: number;
  /** the highest tenant errorRatio seen from the storm on (provider failures are not the tenant's) */
  peakErrorRatio: number;
  /** from the heal to every tenant on tier 0; NaN if not within recoveryCapMs */
  recoveryMs: number;
  /** tenants that left tier 0 again after every tenant was back */
  demotedAfterRecovery: number;
  /** epoch ms of the heal and of the recovery, to read events by */
  healedAt: number;
  recoveredAt: number;
  tenantIds: string[];
}

interface MockProvider {
  url: string;
  failing: Set<string>;
  close(): Promise<void>;
}

/** A provider endpoint per name (POST /<provider>): 503 while the name is in `failing`, else 200. */
async function startProvider(): Promise<MockProvider> {
  const failing = new Set<string>();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const provider = decodeURIComponent((req.url ?? '/').slice(1));
      // An overloaded provider takes a while to say so: calls already in flight fail too.
      if (failing.has(provider)) setTimeout(() => res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"type":"server_error","message":"The server is temporarily unavailable"}}'), 300);
      else setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"usage":{"input_tokens":100,"output_tokens":20}}'), 5);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    failing,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
const int = (key: string, value: number) => ({ key, value: { intValue: String(value) } });
const nanos = (ms: number) => `${BigInt(Math.round(ms * 1000)) * 1000n}`;

/** One model call as OTLP/JSON, with the status the provider answered. */
function callSpan(tenant: string, runId: string, provider: string, model: string, status: number, startMs: number, endMs: number): string {
  const attributes = [
    str('gen_ai.operation.name', 'chat'),
    str('gen_ai.provider.name', provider),
    str('gen_ai.request.model', model),
    int('gen_ai.usage.input_tokens', 100),
    int('gen_ai.usage.output_tokens', status === 200 ? 20 : 0),
    str('agent.run.id', runId),
    int('http.response.status_code', status),
    ...(status === 200 ? [] : [str('error.type', String(status))]),
  ];
  const span = {
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    name: `chat ${model}`,
    kind: 3,
    startTimeUnixNano: nanos(startMs),
    endTimeUnixNano: nanos(endMs),
    attributes,
    status: { code: status === 200 ? 1 : 2 },
  };
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: [str('service.name', 'outage-agent'), str('tenant.id', tenant)] }, scopeSpans: [{ scope: { name: 'outage' }, spans: [span] }] }] });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The tier a tenant's tenant-wide decision names (0 when none). */
function tierOf(service: Service, tenant: string): number {
  const d = service.core.bus.latest(tenant);
  return d.action === 'HALT' ? -1 : (d.tier ?? 0);
}

export async function runProviderOutage(service: Service, spec: OutageSpec, prefix = 'outage'): Promise<OutageResult> {
  const provider = await startProvider();
  const tenantIds = Array.from({ length: spec.tenants }, (_, i) => `${prefix}-${i}`);
  let phase: 'calm' | 'storm' | 'recovery' = 'calm';
  let stopped = false;
  let requests = 0;
  let halted = 0;

  async function agent(tenant: string, runId: string, stepMs: number): Promise<void> {
    while (!stopped) {
      const decision = service.core.bus.latest(tenant, runId);
      const counted = phase !== 'calm';
      if (counted) requests++;
      if (decision.action === 'HALT') {
        if (counted) halted++;
        await sleep(stepMs);
        continue;
      }
      const entry = LADDER.find((e) => e.tier === (decision.tier ?? 0)) ?? LADDER[0];
      const startMs = Date.now();
      const res = await fetch(`${provider.url}/${encodeURIComponent(entry.provider)}`, { method: 'POST', body: '{}' });
      await res.arrayBuffer();
      const body = callSpan(tenant, runId, entry.provider, entry.model, res.status, startMs, Date.now());
      const sent = await fetch(`${service.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await sent.arrayBuffer();
      await sleep(stepMs);
    }
  }

  const busy = Math.ceil(spec.tenants / 2);
  const agents = tenantIds.flatMap((tenant, i) =>
    Array.from({ length: i < busy ? spec.busyLoops : 1 }, (_, loop) => agent(tenant, `${tenant}-r${loop}`, i < busy ? 100 : 400)),
  );

  let peakErrorRatio = 0;
  const sampleErrorRatio = () => {
    for (const t of tenantIds) peakErrorRatio = Math.max(peakErrorRatio, service.core.windows.tenantMetrics(t)?.errorRatio ?? 0);
  };
  const degraded = new Set<string>();
  const demoted = new Set<string>();
  let healedAt: number;
  let recoveredAt = 0;
  try {
    await sleep(spec.calmMs);
    phase = 'storm';
    provider.failing.add('openai');
    const stormEnds = Date.now() + spec.stormMs;
    while (Date.now() < stormEnds) {
      for (const t of tenantIds) if (tierOf(service, t) !== 0) degraded.add(t);
      sampleErrorRatio();
      await sleep(50);
    }
    phase = 'recovery';
    provider.failing.delete('openai');
    healedAt = Date.now();
    while (Date.now() - healedAt < spec.recoveryCapMs) {
      if (tenantIds.every((t) => tierOf(service, t) === 0)) {
        recoveredAt = Date.now();
        break;
      }
      await sleep(20);
    }
    if (recoveredAt > 0) {
      const watchEnds = Date.now() + spec.watchMs;
      while (Date.now() < watchEnds) {
        for (const t of tenantIds) if (tierOf(service, t) !== 0) demoted.add(t);
        await sleep(20);
      }
    }
  } finally {
    stopped = true;
    await Promise.all(agents);
    await provider.close();
  }
  return {
    requests,
    halted,
    degradedTenants: degraded.size,
    peakErrorRatio,
    recoveryMs: recoveredAt > 0 ? recoveredAt - healedAt : Number.NaN,
    demotedAfterRecovery: demoted.size,
    healedAt,
    recoveredAt,
    tenantIds,
  };
}

/** The scenario on a fresh service in a process of its own (chdb binds one data directory per process). */
export function providerOutageFromChild(spec: OutageSpec): Promise<OutageResult> {
  return runChild<OutageResult>('bench/provider-outage.ts', [JSON.stringify(spec)]);
}

if (isEntry(import.meta.url)) {
  const spec = JSON.parse(process.argv[2]!) as OutageSpec;
  const policyFile = join(tmpdir(), `bw-provider-outage-${process.pid}.yaml`);
  writeFileSync(policyFile, PROVIDER_OUTAGE_POLICY);
  const bench = await startBenchService('provider-outage', [], policyFile);
  try {
    const result = await runProviderOutage(bench.service, spec);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await bench.stop();
  }
  process.exit(0);
}
