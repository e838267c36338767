import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantIngestLimiter } from '../../src/receivers/tenant-rate-limit.js';
import type { Service } from '../../src/app/service.js';
import { capturedLog, counterValue, refusalLines, startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

describe('TenantIngestLimiter (token bucket per tenant)', () => {
  let now = 0;
  const limiter = new TenantIngestLimiter({ spansPerSecond: 100, burstSeconds: 2, now: () => now, maxTenants: 3 });
  const req = (entries: [string, number][]) => new Map(entries);

  it('admits a burst up to rate × burst seconds, then says how long to wait', () => {
    expect(limiter.take(req([['a', 200]]))).toBe(0);
    expect(limiter.take(req([['a', 1]]))).toBe(10);
    now += 10;
    expect(limiter.take(req([['a', 1]]))).toBe(0);
    expect(limiter.take(req([['a', 50]]))).toBe(500);
  });

  it('never lets one tenant spend another tenant’s bucket', () => {
    expect(limiter.take(req([['b', 200]]))).toBe(0);
    expect(limiter.take(req([['a', 50]]))).toBeGreaterThan(0);
  });

  it('refuses a mixed request whole, taking nothing from the tenant that had room', () => {
    now += 10_000;
    expect(limiter.take(req([['a', 200]]))).toBe(0);
    expect(limiter.take(req([['a', 10], ['b', 10]]))).toBe(100);
    expect(limiter.take(req([['b', 200]]))).toBe(0);
  });

  it('refills continuously and caps at the burst', () => {
    now += 1_000_000;
    expect(limiter.take(req([['a', 200]]))).toBe(0);
    expect(limiter.take(req([['a', 1]]))).toBeGreaterThan(0);
  });

  it('admits a request larger than the bucket against an empty bucket (debt), not never', () => {
    now += 1_000_000;
    expect(limiter.take(req([['c', 5000]]))).toBe(0);
    expect(limiter.take(req([['c', 1]]))).toBeGreaterThan(40_000);
  });

  it('refuses a tenant unread while its bucket holds less than its last refused request needed', () => {
    now += 1_000_000;
    expect(limiter.refusing('d')).toBe(0); // never seen
    expect(limiter.take(req([['d', 200]]))).toBe(0);
    expect(limiter.refusing('d')).toBe(0); // empty, but nothing was refused yet
    expect(limiter.take(req([['d', 50]]))).toBe(500);
    expect(limiter.refusing('d')).toBe(500);
    now += 300;
    expect(limiter.refusing('d')).toBe(200);
    now += 200;
    expect(limiter.refusing('d')).toBe(0);
    expect(limiter.take(req([['d', 50]]))).toBe(0);
    expect(limiter.refusing('d')).toBe(0);
  });

  it('is off at rate 0', () => {
    expect(new TenantIngestLimiter({ spansPerSecond: 0, burstSeconds: 5 }).take(req([['a', 1e9]]))).toBe(0);
  });
});

const FLOODER_KEY = 'flooder-ingest-key-0123456789';
const QUIET_KEY = 'quiet-ingest-key-0123456789';

describe('a noisy neighbour at the ingest door', () => {
  let service: Service;
  const { logger, lines } = capturedLog();

  beforeAll(async () => {
    const dataDir = tempDataDir();
    const policy = `auth:\n  tenants:\n    keyed-flooder: { ingestKeys: ["${FLOODER_KEY}"] }\n    keyed-quiet: { ingestKeys: ["${QUIET_KEY}"] }\n`;
    service = await startTestService({ dataDir, tenantIngestRate: 20, policyFile: writePolicy(dataDir, policy), policyFileExplicit: true }, logger);
  });

  afterAll(async () => {
    await service?.stop();
  });

  it('gets 429 with Retry-After on its own requests while other tenants are accepted', async () => {
    const statuses: number[] = [];
    let retryAfter = '';
    for (let i = 0; i < 5; i++) {
      const res = await postSpans(service.otlpUrl, runSteps('keyed-flooder', 'f', Array.from({ length: 40 }, () => ({ tool: 'x' }))), { authorization: `Bearer ${FLOODER_KEY}` });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after') ?? '';
    }
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    const quiet = await postSpans(service.otlpUrl, runSteps('keyed-quiet', 'q', [{ tool: 'x' }, {}]), { authorization: `Bearer ${QUIET_KEY}` });
    expect(quiet.status).toBe(200);
    // every refusal counted, those refused before decoding too; one line for the tenant, never its key
    const refused = statuses.filter((s) => s === 429).length;
    expect(await counterValue(service, 'breakwater_otlp_requests_refused_total', { reason: 'tenant_rate_limited' })).toBe(refused);
    expect(refusalLines(lines, 'tenant_rate_limited')).toEqual([expect.objectContaining({ tenantId: 'keyed-flooder', requests: 1, msg: expect.stringMatching(/ingest rate/) })]);
    expect(JSON.stringify(lines)).not.toContain(FLOODER_KEY);
  });

  it('answers a refused keyed tenant before reading its body: a flood costs no decoding', async () => {
    // Garbage would be a 400 if it were decoded; refused unread, it is a 429.
    const res = await fetch(`${service.otlpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${FLOODER_KEY}` },
      body: Buffer.from('not protobuf at all'),
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refusalLines(lines, 'tenant_rate_limited')).toHaveLength(1); // held back for the rest of the minute
    const quiet = await fetch(`${service.otlpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${QUIET_KEY}` },
      body: Buffer.from('not protobuf at all'),
    });
    expect(quiet.status).toBe(400);
  });
});
