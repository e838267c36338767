// Run breakers per tenant are bounded: operator actions cannot create them past the tenant's bound
// (nothing is changed, and other tenants are not affected), while the rules still trip any runaway
// the windows hold.
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/app/log.js';
import type { AuditEventInput } from '../../src/audit/audit-event.js';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { AnomalyDetector } from '../../src/breakers/anomaly.js';
import { BreakerEngine, BreakerLimitError } from '../../src/breakers/breaker-engine.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import { PolicyStore } from '../../src/policy/policy-store.js';
import { WindowStore } from '../../src/windows/window-store.js';
import { RefusalLog } from '../../src/app/refusal-log.js';
import { SelfMetrics } from '../../src/app/self-metrics.js';
import { blankAgentSpan } from '../helpers/agent-span.js';

const NOW = Date.UTC(2026, 11, 2, 12);
let spanCounter = 0;
const toolCalls = (tenantId: string, runId: string, n: number) =>
  Array.from({ length: n }, () => {
    const id = (++spanCounter).toString(16).padStart(16, '0');
    const ns = BigInt(NOW) * 1_000_000n;
    return blankAgentSpan({ tenantId, runId, traceId: id.padStart(32, '0'), spanId: id, operation: 'execute_tool', startTimeUnixNano: ns, endTimeUnixNano: ns + 1_000n });
  });

function setup(maxRunBreakersPerTenant: number) {
  const bus = new DecisionBus({ now: () => NOW });
  const audit = { record: () => undefined, append: (input: AuditEventInput) => Promise.resolve({ ...input, seq: 1 }) } as unknown as AuditLog;
  const log = { error: () => {}, warn: () => {}, info: () => {} } as unknown as Logger;
  const windows = new WindowStore({ now: () => NOW });
  const metrics = new SelfMetrics();
  const lines: Record<string, unknown>[] = [];
  const refusals = new RefusalLog(metrics, { warn: (fields: Record<string, unknown>) => lines.push(fields) } as never, 60_000, () => NOW);
  const engine = new BreakerEngine({ windows, policy: new PolicyStore(), bus, audit, anomaly: new AnomalyDetector(), log, now: () => NOW, maxRunBreakersPerTenant, refusals });
  return { engine, bus, metrics, lines };
}

describe('the run-breaker bound', () => {
  it('refuses an operator a new run breaker past the tenant’s bound, and no one else', async () => {
    const { engine, bus, metrics, lines } = setup(2);
    await engine.forceOpen('a', 'r1', 'incident', 'ops');
    await engine.forceOpen('a', 'r2', 'incident', 'ops');
    await expect(engine.forceOpen('a', 'r3', 'incident', 'ops')).rejects.toThrow(BreakerLimitError);
    await expect(engine.disable('a', 'r3', 'incident', 'ops')).rejects.toThrow(/tenant "a" holds 2 run breakers/);
    expect(engine.breakers('a').map((b) => b.runId).sort()).toEqual(['r1', 'r2']);
    expect(bus.latest('a', 'r3')).toMatchObject({ action: 'ALLOW' });
    // the breakers it holds can still be operated, and other tenants and tenant breakers are not bounded by it
    await expect(engine.reset('a', 'r1', 'ops')).resolves.toMatchObject({ runId: 'r1' });
    await expect(engine.forceOpen('a', undefined, 'incident', 'ops')).resolves.toMatchObject({ scope: 'TENANT', state: 'FORCED_OPEN' });
    await expect(engine.forceOpen('b', 'r1', 'incident', 'ops')).resolves.toMatchObject({ state: 'FORCED_OPEN' });
    // both refusals counted, said once for the tenant
    expect((await metrics.runBreakersRefused.get()).values[0]?.value).toBe(2);
    expect(lines).toEqual([{ tenantId: 'a', reason: 'run_breakers', actions: 1, limit: 2, sinceMs: 0 }]);
  });

  it('still trips a runaway past the bound: the rules are bounded by the runs the windows hold', async () => {
    const { engine, bus } = setup(1);
    await engine.forceOpen('a', 'forced', 'incident', 'ops');
    engine.observe(toolCalls('a', 'runaway', 31), performance.now());
    expect(bus.latest('a', 'runaway')).toMatchObject({ action: 'HALT', state: 'OPEN' });
  });
});
