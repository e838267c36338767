// The breaker engine's ticker runs on a timer: an exception there would end the process. A tick
// that throws is reported, and the ticks after it still run.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../src/app/log.js';
import type { AuditEvent, AuditEventInput } from '../../src/audit/audit-event.js';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { AnomalyDetector } from '../../src/breakers/anomaly.js';
import { BreakerEngine } from '../../src/breakers/breaker-engine.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import { PolicyStore } from '../../src/policy/policy-store.js';
import { WindowStore } from '../../src/windows/window-store.js';

afterEach(() => {
  vi.useRealTimers();
});

function setup() {
  let time = 1_000_000;
  let clockBroken = false;
  const now = () => {
    if (clockBroken) throw new Error('clock broke');
    return time;
  };
  const policy = new PolicyStore();
  const audit = {
    append: async (input: AuditEventInput) => ({ ...input, seq: 1, at: time }) as unknown as AuditEvent,
    record: () => {},
  } as unknown as AuditLog;
  const errors: { fields: unknown; message: string }[] = [];
  const log = { error: (fields: unknown, message: string) => errors.push({ fields, message }), warn: () => {}, info: () => {} } as unknown as Logger;
  const engine = new BreakerEngine({ windows: new WindowStore(), policy, bus: new DecisionBus({ now: () => time }), audit, anomaly: new AnomalyDetector(), log, now });
  return {
    engine,
    policy,
    errors,
    advance: (ms: number) => (time += ms),
    breakClock: (broken: boolean) => (clockBroken = broken),
  };
}

/** the state in the run's latest published decision (what only a tick changes here) */
function published(engine: BreakerEngine, tenantId: string): string {
  return engine.breaker(tenantId, 'run-1').decision.state;
}

describe('breaker engine ticker', () => {
  it('reports a tick that throws and keeps ticking', async () => {
    vi.useFakeTimers();
    const { engine, errors, advance, breakClock } = setup();
    await engine.forceOpen('tick-t', 'run-1', 'test', 'operator', 1_000);
    expect(published(engine, 'tick-t')).toBe('FORCED_OPEN');
    engine.start(100);
    try {
      breakClock(true);
      vi.advanceTimersByTime(350); // three ticks, each throwing
      expect(errors.length).toBe(3);
      expect(errors[0]!.message).toMatch(/tick/);
      expect(errors[0]!.fields).toMatchObject({ error: 'clock broke' });

      breakClock(false);
      advance(2_000);
      vi.advanceTimersByTime(100);
      expect(published(engine, 'tick-t')).toBe('CLOSED'); // the tick published the forced-open expiry
    } finally {
      engine.stop();
    }
  });

  it("one tenant's failing policy does not hold up the other tenants' breakers", async () => {
    vi.useFakeTimers();
    const { engine, policy, errors, advance } = setup();
    await engine.forceOpen('broken-t', 'run-1', 'test', 'operator', 1_000);
    await engine.forceOpen('healthy-t', 'run-1', 'test', 'operator', 1_000);
    const forTenant = policy.forTenant.bind(policy);
    vi.spyOn(policy, 'forTenant').mockImplementation((tenantId) => {
      if (tenantId === 'broken-t') throw new Error('policy broke');
      return forTenant(tenantId);
    });
    engine.start(100);
    try {
      advance(2_000);
      vi.advanceTimersByTime(100);
      expect(published(engine, 'healthy-t')).toBe('CLOSED');
      expect(published(engine, 'broken-t')).toBe('FORCED_OPEN');
      expect(errors.some((e) => (e.fields as { tenantId?: string }).tenantId === 'broken-t')).toBe(true);
    } finally {
      engine.stop();
    }
  });
});
