// Refused runs are counted per reason and logged at most once a minute per tenant and reason.
import { describe, expect, it } from 'vitest';
import { RunRefusalLog } from '../../src/app/run-refusal-log.js';
import { SelfMetrics } from '../../src/app/self-metrics.js';

describe('RunRefusalLog', () => {
  it('counts every refusal and writes one line per tenant and reason a minute, with what it held back', async () => {
    const metrics = new SelfMetrics();
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    let now = 1_000_000;
    const log = new RunRefusalLog(metrics, { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) } as never, 60_000, () => now);
    for (let i = 0; i < 1000; i++) log.refused('a', 'tenant_runs', 2, 5);
    log.refused('b', 'tenant_runs', 1, 1);
    log.refused('a', 'runs', 1, 1);
    now += 60_000;
    log.refused('a', 'tenant_runs', 1, 1);
    expect(lines.map((l) => l.fields)).toEqual([
      { tenantId: 'a', reason: 'tenant_runs', runs: 2, spans: 5, sinceMs: 0 },
      { tenantId: 'b', reason: 'tenant_runs', runs: 1, spans: 1, sinceMs: 0 },
      { tenantId: 'a', reason: 'runs', runs: 1, spans: 1, sinceMs: 0 },
      { tenantId: 'a', reason: 'tenant_runs', runs: 999 * 2 + 1, spans: 999 * 5 + 1, sinceMs: 60_000 },
    ]);
    const counted = (await metrics.runsRefused.get()).values.map((v) => [v.labels.reason, v.value]);
    expect(counted).toEqual([['tenant_runs', 2002], ['runs', 1]]);
  });

  it('forgets tenants it no longer needs to hold back', () => {
    let now = 0;
    const log = new RunRefusalLog(new SelfMetrics(), { warn: () => {} } as never, 60_000, () => now);
    for (let i = 0; i < 10_000; i++) log.refused(`t${i}`, 'tenant_runs', 1, 1);
    now += 60_000;
    log.refused('late', 'tenant_runs', 1, 1);
    expect(log.size).toBe(1);
  });
});
