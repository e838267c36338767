// Memory per active run and per tenant: 100k runs over 10k tenants through the whole decision path
// of a running service (rolling windows, breaker engine, decision bus, degradation engine: the
// pipeline's observers), measured as V8 heap + external memory growth after a forced GC. The
// spans skip storage: the write queue is not state held per run. Run under `node --expose-gc`;
// `bench/run.ts` calls it in a child process so the figure is not polluted.
import type { AgentSpan } from '../src/contracts/agent-span.js';
import { blankAgentSpan } from '../test/helpers/agent-span.js';
import { startBenchService } from './bench-service.js';
import { isEntry } from './child.js';

export interface MemoryFigures {
  runs: number;
  tenants: number;
  bytesPerRun: number;
  bytesPerTenant: number;
}

function span(tenantId: string, runId: string, i: number, nowMs: number): AgentSpan {
  const end = BigInt(nowMs) * 1_000_000n;
  const tool = i % 2 === 1;
  return blankAgentSpan({
    tenantId,
    runId,
    traceId: 'ab'.repeat(16),
    spanId: (i + 1).toString(16).padStart(16, '0'),
    name: tool ? 'execute_tool search' : 'chat',
    startTimeUnixNano: end - 50_000_000n,
    endTimeUnixNano: end,
    operation: tool ? 'execute_tool' : 'chat',
    provider: 'openai',
    requestModel: 'gpt-4o-mini',
    toolName: tool ? 'search' : '',
    inputTokens: 100,
    outputTokens: 20,
    depth: 0,
  });
}

/** V8 heap plus memory outside it (ArrayBuffers are part of `external`, not to be added again). */
function used(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Tenants first (one run each), then the remaining runs: the two figures are separated by difference. */
export async function measureMemory(tenants = 10_000, runs = 100_000): Promise<MemoryFigures> {
  if (!(globalThis as { gc?: unknown }).gc) throw new Error('run with node --expose-gc');
  const bench = await startBenchService('memory');
  const service = bench.service;
  const observers = [service.core.engine, service.core.degradation];
  const observe = (tenantId: string, runId: string) => {
    const now = Date.now();
    const batch = Array.from({ length: 5 }, (_, i) => span(tenantId, runId, i, now));
    for (const observer of observers) observer.observe(batch, performance.now());
  };
  // Ids are strings the state keeps; make them before measuring so only the state is counted.
  const runIds = Array.from({ length: runs }, (_, r) => `run-${r}`);
  const tenantIds = Array.from({ length: tenants }, (_, t) => `tenant-${t}`);
  const afterIds = used();
  for (let t = 0; t < tenants; t++) observe(tenantIds[t]!, runIds[t]!);
  const afterTenants = used();
  for (let r = tenants; r < runs; r++) observe(tenantIds[r % tenants]!, runIds[r]!);
  const afterRuns = used();
  const held = service.core.windows.counts().runs;
  await bench.stop();
  if (held !== runs) throw new Error(`expected ${runs} runs held, got ${held}`);
  const perRun = (afterRuns - afterTenants) / (runs - tenants);
  // A tenant's first batch pays for its run and itself.
  const perTenant = (afterTenants - afterIds) / tenants - perRun;
  return { runs, tenants, bytesPerRun: Math.round(perRun), bytesPerTenant: Math.round(perTenant) };
}

if (isEntry(import.meta.url)) {
  const [tenants, runs] = process.argv.slice(2).map(Number);
  measureMemory(tenants || undefined, runs || undefined).then(
    (figures) => process.stdout.write(`${JSON.stringify(figures)}\n`),
    (err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
