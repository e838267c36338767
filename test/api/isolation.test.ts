import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { gql, subscribeSse, subscribeWs } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

// Tenant isolation is a security property: tenant A's token must never read, change or subscribe
// to tenant B, on any query, nested field, list, filter, alias, batch, mutation or subscription,
// and the error must not say whether B exists. Admin tokens see everything.

const ADMIN = 'admin-token-0123456789abcdef';
const TOKEN_A = 'tenant-a-token-0123456789abcdef';
const TOKEN_B = 'tenant-b-token-0123456789abcdef';
const INGEST_A = 'ingest-a-key-0123456789abcdef';
const INGEST_B = 'ingest-b-key-0123456789abcdef';

const POLICY = `
auth:
  adminTokens: ["${ADMIN}"]
  tenants:
    tenant-a: { adminTokens: ["${TOKEN_A}"], ingestKeys: ["${INGEST_A}"] }
    tenant-b: { adminTokens: ["${TOKEN_B}"], ingestKeys: ["${INGEST_B}"] }
tenants:
  tenant-a: { tier: free }
  tenant-b: { tier: pro }
`;

let service: Service;
let url: string;
const from = new Date(Date.now() - 3_600_000).toISOString();
const to = new Date(Date.now() + 3_600_000).toISOString();

beforeAll(async () => {
  service = await startWithPolicy(POLICY);
  url = service.graphqlUrl;
  expect((await postSpans(service.otlpUrl, runSteps('tenant-a', 'run-a', [{ tool: 'x' }, {}]), { authorization: `Bearer ${INGEST_A}` })).status).toBe(200);
  expect((await postSpans(service.otlpUrl, runSteps('tenant-b', 'run-b', [{ tool: 'secret-tool' }, {}]), { authorization: `Bearer ${INGEST_B}` })).status).toBe(200);
  await service.core.engine.forceOpen('tenant-b', 'run-b', 'b incident', 'admin');
});

afterAll(async () => {
  await service?.stop();
});

/** Every operation that names a tenant, aimed at tenant-b. */
const AIMED_AT_B: [string, string, Record<string, unknown>?][] = [
  ['tenant', '{ tenant(id: "tenant-b") { id } }'],
  ['tenant.metrics', '{ tenant(id: "tenant-b") { metrics { stepCount } } }'],
  ['tenant.policy', '{ tenant(id: "tenant-b") { policy { tier } } }'],
  ['tenant.breakers', '{ tenant(id: "tenant-b") { breakers { state } } }'],
  ['tenant.activeRuns', '{ tenant(id: "tenant-b") { activeRuns { runId } } }'],
  ['tenant.timeseries', 'query($f: DateTime!, $t: DateTime!) { tenant(id: "tenant-b") { timeseries(metric: SPANS, from: $f, to: $t) { value } } }', { f: from, t: to }],
  ['tenant.costAttribution', 'query($f: DateTime!, $t: DateTime!) { tenant(id: "tenant-b") { costAttribution(from: $f, to: $t) { model } } }', { f: from, t: to }],
  ['tenant.auditEvents', '{ tenant(id: "tenant-b") { auditEvents { reason } } }'],
  ['tenant.degradationEvents', '{ tenant(id: "tenant-b") { degradationEvents { reason } } }'],
  ['run', '{ run(tenantId: "tenant-b", runId: "run-b") { runId } }'],
  ['run.steps', '{ run(tenantId: "tenant-b", runId: "run-b") { steps { toolName } } }'],
  ['decision', '{ decision(tenantId: "tenant-b") { action } }'],
  ['decision of a run', '{ decision(tenantId: "tenant-b", runId: "run-b") { action reason } }'],
  ['verifyAuditLog', '{ verifyAuditLog(tenantId: "tenant-b") { ok } }'],
  ['alias beside an allowed field', '{ mine: decision(tenantId: "tenant-a") { action } theirs: decision(tenantId: "tenant-b") { action } }'],
  ['a variable', 'query($id: String!) { tenant(id: $id) { id } }', { id: 'tenant-b' }],
  ['setTenantPolicy', 'mutation { setTenantPolicy(tenantId: "tenant-b", policy: { run: { stepCount: 1 } }) { tier } }'],
  ['forceOpenBreaker', 'mutation { forceOpenBreaker(tenantId: "tenant-b", reason: "x") { state } }'],
  ['resetBreaker', 'mutation { resetBreaker(tenantId: "tenant-b", runId: "run-b") { state } }'],
  ['disableBreaker', 'mutation { disableBreaker(tenantId: "tenant-b", reason: "x") { state } }'],
  ['acknowledgeEscalation', 'mutation { acknowledgeEscalation(tenantId: "tenant-b", note: "x") { seq } }'],
  ['tenant.degradation', '{ tenant(id: "tenant-b") { degradation { status pendingConsents { id } } } }'],
  ['approveDegradation', 'mutation { approveDegradation(tenantId: "tenant-b", requestId: "x") { decision { action } } }'],
  ['refuseDegradation', 'mutation { refuseDegradation(tenantId: "tenant-b", requestId: "x") { decision { action } } }'],
  ['reserveQuota', 'mutation { reserveQuota(tenantId: "tenant-b", tokens: 10) { granted } }'],
  ['setTenantDegradation', 'mutation { setTenantDegradation(tenantId: "tenant-b", policy: { notify: false }) }'],
  ['setTierThresholds (admin only)', 'mutation { setTierThresholds(tier: "pro", thresholds: { run: { stepCount: 1 } }) }'],
];

describe("tenant A's token never reaches tenant B", () => {
  it.each(AIMED_AT_B)('%s is refused, saying nothing about tenant B', async (_, query, variables) => {
    const res = await gql(url, query, variables ?? {}, TOKEN_A);
    expect(res.errors?.length).toBeGreaterThan(0);
    expect(['FORBIDDEN']).toContain(res.errors![0]!.extensions?.code);
    const text = JSON.stringify(res);
    expect(text).not.toMatch(/run-b|secret-tool|b incident|tenant-b/);
  });

  it('the same error for a tenant that does not exist', async () => {
    const existing = await gql(url, '{ tenant(id: "tenant-b") { id } }', {}, TOKEN_A);
    const missing = await gql(url, '{ tenant(id: "no-such-tenant") { id } }', {}, TOKEN_A);
    expect(missing.errors![0]!.message).toBe(existing.errors![0]!.message);
  });

  it('lists and filters show only its own tenant', async () => {
    for (const filter of ['', '(filter: { idPrefix: "tenant-" })', '(filter: { tier: "pro" })', '(sort: TRIPS)']) {
      const res = await gql<{ tenants: { totalCount: number; edges: { node: { id: string } }[] } }>(url, `{ tenants${filter} { totalCount edges { node { id } } } }`, {}, TOKEN_A);
      expect(res.errors).toBeUndefined();
      expect(res.data!.tenants.edges.every((e) => e.node.id === 'tenant-a')).toBe(true);
      expect(res.data!.tenants.totalCount).toBeLessThanOrEqual(1);
    }
  });

  it('batched operations are checked one by one', async () => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN_A}` },
      body: JSON.stringify([{ query: '{ decision(tenantId: "tenant-a") { action } }' }, { query: '{ decision(tenantId: "tenant-b") { reason } }' }]),
    });
    const [mine, theirs] = (await res.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] }[];
    expect(mine!.errors).toBeUndefined();
    expect(theirs!.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(JSON.stringify(theirs)).not.toMatch(/b incident/);
  });

  it('its own tenant works with the same token', async () => {
    const res = await gql<{ tenant: { id: string; metrics: { stepCount: number } } }>(url, '{ tenant(id: "tenant-a") { id metrics { stepCount } } }', {}, TOKEN_A);
    expect(res.data!.tenant).toEqual({ id: 'tenant-a', metrics: { stepCount: 2 } });
  });

  it('cannot subscribe to B over SSE or WebSocket', async () => {
    const sse = subscribeSse(url, 'subscription { decisions(tenantId: "tenant-b") { reason } }', {}, TOKEN_A);
    const ws = subscribeWs(url, 'subscription { breakerEvents(tenantId: "tenant-b") { reason } }', {}, TOKEN_A);
    await vi.waitFor(() => expect(sse.errors.length * ws.errors.length).toBeGreaterThan(0), { timeout: 5_000 });
    for (const { messages, errors } of [sse, ws]) {
      expect(messages).toEqual([]);
      expect(JSON.stringify(errors)).toMatch(/"message":"this token cannot reach that tenant".*"code":"FORBIDDEN"/);
      expect(JSON.stringify(errors)).not.toMatch(/b incident|at \w+ \(/);
    }
    sse.close();
    ws.close();
  });

  it("cannot subscribe to B over yoga's plain SSE on /graphql either", async () => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${TOKEN_A}` },
      body: JSON.stringify({ query: 'subscription { decisions(tenantId: "tenant-b") { reason } }' }),
    });
    const reader = res.body!.getReader();
    let text = '';
    while (!/event: complete/.test(text)) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    await reader.cancel();
    expect(text).toMatch(/"message":"this token cannot reach that tenant".*"code":"FORBIDDEN"/);
    expect(text).not.toMatch(/b incident/);
  });

  it('refuses a wrong token on the SSE stream with 401 and no stack trace', async () => {
    for (const authorization of ['Bearer wrong-token-0123456789', 'Bearer ' + TOKEN_A.slice(0, -1)]) {
      const res = await fetch(`${url}/graphql/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization },
        body: JSON.stringify({ query: 'subscription { decisions(tenantId: "tenant-a") { reason } }' }),
      });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ errors: [{ message: 'missing or invalid token', extensions: { code: 'UNAUTHENTICATED' } }] });
    }
  });

  it('refuses missing and wrong tokens with 401', async () => {
    expect((await gql(url, '{ tenants { totalCount } }')).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await gql(url, '{ tenants { totalCount } }', {}, 'wrong-token-0123456789')).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('ingest keys bind spans to their tenant', () => {
  it("rejects spans claiming another tenant than the key's, in partial_success", async () => {
    const res = await postSpans(service.otlpUrl, runSteps('tenant-b', 'forged', [{ tool: 'x' }]), { authorization: `Bearer ${INGEST_A}` });
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer()).toString('latin1');
    expect(body).toMatch(/tenant.id does not match the ingest key/);
    expect(body).not.toMatch(/tenant-a/);
    const rows = await service.store.client.query({ query: "SELECT count() AS n FROM spans WHERE RunId = 'forged'", format: 'JSONEachRow' });
    expect(await rows.json()).toEqual([{ n: 0 }]);
  });

  it('refuses a missing or unknown ingest key with 401', async () => {
    expect((await postSpans(service.otlpUrl, runSteps('tenant-a', 'r', [{ tool: 'x' }]))).status).toBe(401);
    expect((await postSpans(service.otlpUrl, runSteps('tenant-a', 'r', [{ tool: 'x' }]), { authorization: 'Bearer nope' })).status).toBe(401);
  });

  it('answers 429 to an address that keeps presenting bad keys', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) statuses.push((await postSpans(service.otlpUrl, runSteps('tenant-a', 'r', [{ tool: 'x' }]), { authorization: `Bearer guess-${i}` })).status);
    expect(statuses).toContain(401);
    expect(statuses.at(-1)).toBe(429);
  });
});

describe('admin tokens see every tenant', () => {
  it('reads, lists and changes any tenant', async () => {
    const res = await gql<{ tenants: { totalCount: number }; b: { decision: { action: string; reason: string } } }>(
      url,
      '{ tenants { totalCount } b: tenant(id: "tenant-b") { decision { action reason } } }',
      {},
      ADMIN,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.tenants.totalCount).toBe(2);
    const run = await gql<{ decision: { action: string; reason: string } }>(url, '{ decision(tenantId: "tenant-b", runId: "run-b") { action reason } }', {}, ADMIN);
    expect(run.data!.decision).toEqual({ action: 'HALT', reason: 'b incident' });
    const set = await gql(url, 'mutation { setTierThresholds(tier: "pro", thresholds: { run: { stepCount: 5000 } }) }', {}, ADMIN);
    expect(set.errors).toBeUndefined();
  });

  it("a tenant token may tune its own thresholds but not change its tier", async () => {
    const ok = await gql(url, 'mutation { setTenantPolicy(tenantId: "tenant-a", policy: { run: { stepCount: 50 } }) { run { stepCount } } }', {}, TOKEN_A);
    expect(ok.errors).toBeUndefined();
    const tier = await gql(url, 'mutation { setTenantPolicy(tenantId: "tenant-a", policy: { tier: "enterprise" }) { tier } }', {}, TOKEN_A);
    expect(tier.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
