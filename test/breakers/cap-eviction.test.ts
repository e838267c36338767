// One tenant's new runs filling the window store must not push another tenant's halted run out:
// its breaker and its HALT stay while the cap evicts runs that hold no decision.
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/app/log.js';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { AnomalyDetector } from '../../src/breakers/anomaly.js';
import { BreakerEngine } from '../../src/breakers/breaker-engine.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import { PolicyStore } from '../../src/policy/policy-store.js';
import { WindowStore } from '../../src/windows/window-store.js';
import { blankAgentSpan } from '../helpers/agent-span.js';

const NOW = Date.UTC(2026, 11, 2, 12);
let spanCounter = 0;
const toolCalls = (tenantId: string, runId: string, n: number) =>
  Array.from({ length: n }, () => {
    const id = (++spanCounter).toString(16).padStart(16, '0');
    const ns = BigInt(NOW) * 1_000_000n;
    return blankAgentSpan({ tenantId, runId, traceId: id.padStart(32, '0'), spanId: id, operation: 'execute_tool', startTimeUnixNano: ns, endTimeUnixNano: ns + 1_000n });
  });

function setup(maxRuns: number) {
  const bus = new DecisionBus({ now: () => NOW });
  const audit = { record: () => undefined } as unknown as AuditLog;
  const log = { error: () => {}, warn: () => {}, info: () => {} } as unknown as Logger;
  const ref: { engine?: BreakerEngine } = {};
  const windows = new WindowStore({
    now: () => NOW,
    maxRuns,
    holdsDecision: (tenantId, runId) => ref.engine!.holdsDecision(tenantId, runId),
    onEvict: (event) => {
      if (event.kind === 'run') ref.engine!.forgetRun(event.tenantId, event.runId);
    },
  });
  const engine = (ref.engine = new BreakerEngine({ windows, policy: new PolicyStore(), bus, audit, anomaly: new AnomalyDetector(), log, now: () => NOW }));
  return { engine, bus, windows };
}

describe('the run cap', () => {
  it("evicts other runs before a halted one, so another tenant's new runs cannot lift its HALT", () => {
    const { engine, bus, windows } = setup(50);
    // The free tier halts a run at 30 tool calls a minute.
    engine.observe(toolCalls('victim', 'runaway', 31), performance.now());
    expect(bus.latest('victim', 'runaway')).toMatchObject({ action: 'HALT', state: 'OPEN' });
    for (let r = 0; r < 500; r++) engine.observe(toolCalls(`flooder-${r % 5}`, `run-${r}`, 1), performance.now());
    expect(windows.counts().runs).toBe(50);
    expect(bus.latest('victim', 'runaway')).toMatchObject({ action: 'HALT', state: 'OPEN' });
    expect(engine.holdsDecision('victim', 'runaway')).toBe(true);
  });

  it('still holds the cap when every run holds a decision', () => {
    const { engine, windows } = setup(5);
    for (let r = 0; r < 20; r++) engine.observe(toolCalls('storm', `loop-${r}`, 31), performance.now());
    expect(windows.counts().runs).toBe(5);
  });
});
