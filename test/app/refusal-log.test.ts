// Refusals of the per-tenant bounds are counted and logged at most once a minute per tenant and reason.
import { describe, expect, it } from 'vitest';
import { RefusalLog } from '../../src/app/refusal-log.js';
import { SelfMetrics } from '../../src/app/self-metrics.js';

describe('RefusalLog', () => {
  it('counts every refusal and writes one line per tenant and reason a minute, with what it held back', async () => {
    const metrics = new SelfMetrics();
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    let now = 1_000_000;
    const log = new RefusalLog(metrics, { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) } as never, 60_000, () => now);
    for (let i = 0; i < 1000; i++) log.refused('a', 'tenant_runs', { runs: 2, spans: 5 });
    log.refused('b', 'tenant_runs', { runs: 1, spans: 1 });
    log.refused('a', 'runs', { runs: 1, spans: 1 });
    now += 60_000;
    log.refused('a', 'tenant_runs', { runs: 1, spans: 1 });
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
    const log = new RefusalLog(new SelfMetrics(), { warn: () => {} } as never, 60_000, () => now);
    for (let i = 0; i < 10_000; i++) log.refused(`t${i}`, 'tenant_runs', { runs: 1, spans: 1 });
    now += 60_000;
    log.refused('late', 'tenant_runs', { runs: 1, spans: 1 });
    expect(log.size).toBe(1);
  });

  it('writes one line an interval for a budget all unknown tenants share, naming the tenant refused', () => {
    const lines: Record<string, unknown>[] = [];
    const log = new RefusalLog(new SelfMetrics(), { warn: (fields: Record<string, unknown>) => lines.push(fields) } as never, 60_000, () => 0);
    for (let i = 0; i < 100; i++) log.refused(`rotated-${i}`, 'unknown_tenants_count_limited', { requests: 1, spans: 2 });
    expect(lines).toEqual([{ tenantId: 'rotated-0', reason: 'unknown_tenants_count_limited', requests: 1, spans: 2, sinceMs: 0 }]);
    expect(log.size).toBe(1);
  });
});
