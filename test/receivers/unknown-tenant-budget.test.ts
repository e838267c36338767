// Without ingest keys a sender names its own tenant: tenants not named in the policy share one
// budget, so a new tenant.id per request neither escapes the rate limit nor grows memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { TenantIngestLimiter, type UnknownTenantBudget } from '../../src/receivers/tenant-rate-limit.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { capturedLog, counterValue, refusalLines, startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

const tenSpans = (tenant: string, run: string) => runSteps(tenant, run, Array.from({ length: 10 }, () => ({ tool: 'x' })));

describe('tenant ids rotated per request, over HTTP without ingest keys', () => {
  let service: Service;
  const { logger, lines } = capturedLog();

  beforeAll(async () => {
    const dataDir = tempDataDir();
    // each tenant's bucket holds 100 spans; the unknown tenants' shared one 150
    service = await startTestService({
      dataDir,
      tenantIngestRate: 20,
      unknownTenantIngestRate: 30,
      policyFile: writePolicy(dataDir, 'tenants:\n  named-tenant: {}\n'),
      policyFileExplicit: true,
    }, logger);
  });

  afterAll(async () => {
    await service?.stop();
  });

  it('get 429 once the shared budget is spent, while a tenant named in the policy is unaffected', async () => {
    const rotated: Response[] = [];
    const named: number[] = [];
    const started = performance.now();
    for (let i = 0; i < 40; i++) {
      rotated.push(await postSpans(service.otlpUrl, tenSpans(`rotating-${i}`, `r${i}`)));
      if (i % 8 === 0) named.push((await postSpans(service.otlpUrl, tenSpans('named-tenant', `n${i}`))).status);
    }
    const seconds = (performance.now() - started) / 1000;
    const accepted = rotated.filter((res) => res.status === 200).length;
    // every new id had a full bucket of its own: only the shared one (150 + its refill) refuses them
    expect(accepted).toBeLessThanOrEqual(15 + Math.ceil((30 * seconds) / 10));
    const refused = rotated.find((res) => res.status === 429)!;
    expect(refused).toBeDefined();
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.text()).toContain('not named in the policy');
    expect(named).toEqual([200, 200, 200, 200, 200]);
    const stored = await queryRows<{ n: string }>(service.store.client, "SELECT toString(count()) AS n FROM spans WHERE TenantId = 'named-tenant'", {});
    expect(Number(stored[0]!.n)).toBe(50);
    // every refusal counted; one line for all the rotated ids (not one each), naming the first refused
    const refusedCount = rotated.filter((res) => res.status === 429).length;
    expect(await counterValue(service, 'breakwater_otlp_requests_refused_total', { reason: 'unknown_tenants_rate_limited' })).toBe(refusedCount);
    const firstRefused = `rotating-${rotated.findIndex((res) => res.status === 429)}`;
    expect(refusalLines(lines, 'unknown_tenants_rate_limited')).toEqual([expect.objectContaining({ tenantId: firstRefused, requests: 1, spans: 10 })]);
  });
});

describe('distinct unknown tenant ids, over HTTP without ingest keys', () => {
  let service: Service;
  const { logger, lines } = capturedLog();

  beforeAll(async () => {
    // 4 spans/s (a bucket of 20): a place is held until its bucket is full again, 2.5 s after 10 spans
    service = await startTestService({ dataDir: tempDataDir(), tenantIngestRate: 4, unknownTenantIngestRate: 0, maxUnknownTenants: 3 }, logger);
  });

  afterAll(async () => {
    await service?.stop();
  });

  it('are admitted up to the bound; a new one past it gets 429 while admitted ones keep working', async () => {
    for (let i = 0; i < 3; i++) expect((await postSpans(service.otlpUrl, tenSpans(`bounded-${i}`, `b${i}`))).status).toBe(200);
    const refused = await postSpans(service.otlpUrl, tenSpans('bounded-3', 'b3'));
    expect(refused.status).toBe(429);
    expect(await refused.text()).toContain('too many tenants not named in the policy');
    expect((await postSpans(service.otlpUrl, tenSpans('bounded-0', 'b0-again'))).status).toBe(200);
    expect((await postSpans(service.otlpUrl, tenSpans('bounded-4', 'b4'))).status).toBe(429);
    expect(await counterValue(service, 'breakwater_otlp_requests_refused_total', { reason: 'unknown_tenants_count_limited' })).toBe(2);
    expect(refusalLines(lines, 'unknown_tenants_count_limited')).toEqual([expect.objectContaining({ tenantId: 'bounded-3', requests: 1, spans: 10 })]);
  });
});

describe('the bound on unknown tenants (TenantIngestLimiter)', () => {
  let now = 0;
  const budget: UnknownTenantBudget = { spansPerSecond: 0, maxTenants: 3, isKnown: (tenant) => tenant.startsWith('known') };
  // 100 spans/s per tenant, burst 2 s: a bucket is full again 2 s after it was emptied
  const limiter = new TenantIngestLimiter({ spansPerSecond: 100, burstSeconds: 2, now: () => now, maxTenants: 10, unknown: budget });
  const req = (tenant: string, spans = 200) => new Map([[tenant, spans]]);

  it('admits at most maxTenants busy unknown tenants; already admitted ones keep working', () => {
    for (const tenant of ['u1', 'u2', 'u3']) expect(limiter.take(req(tenant, 100))).toBe(0);
    expect(limiter.take(req('u4'))).toBe(1000);
    expect(limiter.admit(req('u4'))?.reason).toBe('unknown_tenants_count_limited');
    expect(limiter.unknownTenants).toBe(3);
    expect(limiter.take(req('u1', 50))).toBe(0);
    // tenants named in the policy are not counted
    for (let i = 0; i < 5; i++) expect(limiter.take(req(`known-${i}`))).toBe(0);
    expect(limiter.unknownTenants).toBe(3);
  });

  it('gives an idle unknown tenant’s place (its bucket full again) to a new one', () => {
    now += 1000; // u2 and u3 have refilled; u1 (used later, with debt) has not
    expect(limiter.take(req('u5'))).toBe(0);
    expect(limiter.take(req('u6'))).toBe(0);
    expect(limiter.take(req('u7'))).toBeGreaterThan(0);
    expect(limiter.admit(req('u7'))?.reason).toBe('unknown_tenants_count_limited');
    expect(limiter.unknownTenants).toBe(3);
  });

  it('charges unknown tenants to one shared bucket as well as their own', () => {
    const shared = new TenantIngestLimiter({ spansPerSecond: 100, burstSeconds: 2, now: () => now, maxTenants: 10, unknown: { spansPerSecond: 50, maxTenants: 1000, isKnown: (tenant) => tenant === 'known' } });
    expect(shared.take(req('a', 60))).toBe(0);
    expect(shared.take(req('b', 60))).toBe(400);
    expect(shared.admit(req('b', 60))?.reason).toBe('unknown_tenants_rate_limited');
    expect(shared.take(req('known', 200))).toBe(0);
  });
});
