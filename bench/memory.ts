// Memory per active run and per tenant: 100k runs over 10k tenants recorded in the rolling windows
// (the decision path's state), measured as heap + external growth after a forced GC. Run under
// `node --expose-gc`; `bench/run.ts` calls it in a child process so the figure is not polluted.
import type { AgentSpan } from '../src/ingest/agent-span.js';
import { WindowStore } from '../src/windows/window-store.js';
import { blankAgentSpan } from '../test/helpers/agent-span.js';

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

function used(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

/** Tenants first (one run each), then the remaining runs: the two figures are separated by difference. */
export function measureMemory(tenants = 10_000, runs = 100_000): MemoryFigures {
  if (!(globalThis as { gc?: unknown }).gc) throw new Error('run with node --expose-gc');
  const now = Date.now();
  const store = new WindowStore({ now: () => now, maxRuns: runs * 2 });
  const baseline = used();
  // Run ids are strings kept by the store; make them before measuring so only the store is counted.
  const runIds = Array.from({ length: runs }, (_, r) => `run-${r}`);
  const tenantIds = Array.from({ length: tenants }, (_, t) => `tenant-${t}`);
  const afterIds = used();
  for (let t = 0; t < tenants; t++) for (let i = 0; i < 5; i++) store.record(span(tenantIds[t]!, runIds[t]!, i, now));
  const afterTenants = used();
  for (let r = tenants; r < runs; r++) for (let i = 0; i < 5; i++) store.record(span(tenantIds[r % tenants]!, runIds[r]!, i, now));
  const afterRuns = used();
  void baseline;
  const perRun = (afterRuns - afterTenants) / (runs - tenants);
  // A tenant's first window pays for its run and itself.
  const perTenant = (afterTenants - afterIds) / tenants - perRun;
  if (store.counts().runs !== runs) throw new Error(`expected ${runs} runs held, got ${store.counts().runs}`);
  return { runs, tenants, bytesPerRun: Math.round(perRun), bytesPerTenant: Math.round(perTenant) };
}

if (process.argv[1]?.endsWith('memory.ts')) {
  const [tenants, runs] = process.argv.slice(2).map(Number);
  process.stdout.write(`${JSON.stringify(measureMemory(tenants || undefined, runs || undefined))}\n`);
}
