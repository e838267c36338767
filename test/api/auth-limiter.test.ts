import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthFailureLimiter } from '../../src/api/auth.js';
import type { Service } from '../../src/app/service.js';
import { gql } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

// A guesser behind the same NAT or Collector as real agents must not lock them out, and must not
// be able to lift its own lock by failing from many other addresses.

const GUESSER = '10.0.0.1';
const GOOD = 'agent-key-0123456789abcdef';

function lockOut(limiter: AuthFailureLimiter, address: string, now: number): void {
  for (let i = 0; i < 3; i++) limiter.fail(address, now);
}

describe('AuthFailureLimiter keyed on address and credential', () => {
  it('still checks a credential that authenticated from the locked address', () => {
    const limiter = new AuthFailureLimiter(3, 1000);
    limiter.succeed(GUESSER, GOOD);
    lockOut(limiter, GUESSER, 100);
    expect(limiter.blocked(GUESSER, GOOD, 200)).toBe(false);
    expect(limiter.blocked(GUESSER, 'guess-4', 200)).toBe(true);
    expect(limiter.blocked(GUESSER, undefined, 200)).toBe(true);
    // Trust is per address: the same key from another locked address is not exempt.
    lockOut(limiter, '10.0.0.2', 100);
    expect(limiter.blocked('10.0.0.2', 'guess-4', 200)).toBe(true);
  });

  it('keeps a guesser locked after failures from 10,001 other addresses', () => {
    const limiter = new AuthFailureLimiter(3, 1000, 10_000);
    lockOut(limiter, GUESSER, 100);
    for (let i = 0; i < 10_001; i++) limiter.fail(`192.168.${i >> 8}.${i & 255}`, 200);
    expect(limiter.blocked(GUESSER, 'guess-4', 300)).toBe(true);
    expect(limiter.size).toBeLessThanOrEqual(10_000);
  });

  it('sends new addresses to a shared count when every tracked address is locked', () => {
    const limiter = new AuthFailureLimiter(3, 1000, 100);
    for (let i = 0; i < 100; i++) lockOut(limiter, `192.168.0.${i}`, 100);
    for (let i = 0; i < 3; i++) limiter.fail(`172.16.0.${i}`, 200);
    expect(limiter.size).toBe(100);
    expect(limiter.blocked('192.168.0.0', 'guess', 300)).toBe(true);
    // The overflow is locked for unknown addresses until its window ends, like any address.
    expect(limiter.blocked('172.16.9.9', 'guess', 300)).toBe(true);
    expect(limiter.blocked('172.16.9.9', 'guess', 1300)).toBe(false);
  });
});

const ADMIN = 'admin-token-0123456789abcdef';
const TOKEN_A = 'tenant-a-token-0123456789abcdef';
const INGEST_A = 'ingest-a-key-0123456789abcdef';

describe('a locked-out guesser on the same address as valid clients, over HTTP', () => {
  let service: Service;
  beforeAll(async () => {
    service = await startWithPolicy(`
auth:
  adminTokens: ["${ADMIN}"]
  tenants:
    tenant-a: { adminTokens: ["${TOKEN_A}"], ingestKeys: ["${INGEST_A}"] }
tenants:
  tenant-a: { tier: free }
`);
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('answers the guesser 429 on :4318 while the agent key from that address is still accepted', async () => {
    const body = runSteps('tenant-a', 'r', [{ tool: 'x' }]);
    expect((await postSpans(service.otlpUrl, body, { authorization: `Bearer ${INGEST_A}` })).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) statuses.push((await postSpans(service.otlpUrl, body, { authorization: `Bearer guess-${i}` })).status);
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(20)).toEqual([429, 429, 429, 429, 429]);
    expect((await postSpans(service.otlpUrl, body, { authorization: `Bearer ${INGEST_A}` })).status).toBe(200);
    expect((await postSpans(service.otlpUrl, body, { authorization: 'Bearer guess-26' })).status).toBe(429);
  });

  it('answers the guesser 429 on GraphQL while the token from that address is still accepted', async () => {
    expect((await gql(service.graphqlUrl, '{ tenant(id: "tenant-a") { id } }', {}, TOKEN_A)).errors).toBeUndefined();
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 25; i++) {
      const res = await fetch(`${service.graphqlUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer guess-${i}` },
        body: JSON.stringify({ query: '{ tenants { totalCount } }' }),
      });
      statuses.push(res.status);
      retryAfter = res.headers.get('retry-after');
      await res.arrayBuffer();
    }
    expect(statuses.slice(20)).toEqual([429, 429, 429, 429, 429]);
    expect(retryAfter).toBe('60');
    const again = await gql<{ tenant: { id: string } }>(service.graphqlUrl, '{ tenant(id: "tenant-a") { id } }', {}, TOKEN_A);
    expect(again.errors).toBeUndefined();
    expect(again.data!.tenant.id).toBe('tenant-a');
  });
});
