import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { gql, subscribeSse, subscribeWs } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

const POLICY = `
prices:
  gpt-4o-mini: { input: 0.15, output: 0.6 }
tiers:
  free:
    run: { toolCallsPerMinute: 100 }
`;

let service: Service;
let url: string;

beforeAll(async () => {
  service = await startWithPolicy(POLICY);
  url = service.graphqlUrl;
});

afterAll(async () => {
  await service?.stop();
});

interface DecisionMsg {
  decisions: { tenantId: string; runId: string | null; action: string; state: string; metric: string; threshold: number; observed: number; sequence: number };
}

const DECISIONS = `subscription($t: String!, $r: String) { decisions(tenantId: $t, runId: $r) { tenantId runId action state metric threshold observed sequence } }`;

describe('queries answer live metrics from memory and history from ClickHouse', () => {
  const from = new Date(Date.now() - 3_600_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();

  beforeAll(async () => {
    const steps = [
      ...Array.from({ length: 5 }, () => ({ model: 'gpt-4o-mini', inputTokens: 100, outputTokens: 20 })),
      ...Array.from({ length: 3 }, () => ({ tool: 'search' })),
    ];
    expect((await postSpans(service.otlpUrl, runSteps('api-a', 'r1', steps))).status).toBe(200);
    expect((await postSpans(service.otlpUrl, runSteps('api-b', 'r9', [{ tool: 'search' }]))).status).toBe(200);
  });

  it('tenant: policy, live metrics, active runs, timeseries and cost attribution', async () => {
    const res = await gql<{ tenant: Record<string, any> }>(
      url,
      `query($from: DateTime!, $to: DateTime!) { tenant(id: "api-a") {
        id policy { tier run { toolCallsPerMinute } warnFraction }
        metrics { stepCount toolCallsPerMinute modelCallsPerMinute tokenVelocity60s costUsd }
        activeRuns { runId metrics { stepCount } decision { action } }
        tokens: timeseries(metric: TOKENS, from: $from, to: $to) { time value }
        tools: timeseries(metric: TOOL_CALLS, from: $from, to: $to, stepSeconds: 5) { value }
        costAttribution(from: $from, to: $to) { day provider model inputTokens outputTokens costUsd calls }
      } }`,
      { from, to },
    );
    expect(res.errors).toBeUndefined();
    const t = res.data!.tenant;
    expect(t.policy).toEqual({ tier: 'free', run: { toolCallsPerMinute: 100 }, warnFraction: 0.5 });
    expect(t.metrics).toMatchObject({ stepCount: 8, toolCallsPerMinute: 3, modelCallsPerMinute: 5 });
    expect(t.metrics.tokenVelocity60s).toBeCloseTo((5 * 120) / 60, 6);
    const expectedCost = (5 * 100 * 0.15 + 5 * 20 * 0.6) / 1_000_000;
    expect(t.metrics.costUsd).toBeCloseTo(expectedCost, 12);
    expect(t.activeRuns).toEqual([{ runId: 'r1', metrics: { stepCount: 8 }, decision: { action: 'ALLOW' } }]);
    expect(t.tokens.reduce((n: number, p: { value: number }) => n + p.value, 0)).toBe(600);
    expect(t.tools.reduce((n: number, p: { value: number }) => n + p.value, 0)).toBe(3);
    expect(t.costAttribution).toHaveLength(1);
    expect(t.costAttribution[0]).toMatchObject({ provider: 'openai', model: 'gpt-4o-mini', inputTokens: 500, outputTokens: 100, calls: 5 });
    expect(t.costAttribution[0].costUsd).toBeCloseTo(expectedCost, 12);
  });

  it('tenants: filter, sort and cursor pagination', async () => {
    const first = await gql<{ tenants: any }>(url, '{ tenants(sort: ID, first: 1) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }');
    expect(first.data!.tenants.totalCount).toBeGreaterThanOrEqual(2);
    expect(first.data!.tenants.edges.map((e: any) => e.node.id)).toEqual(['api-a']);
    const next = await gql<{ tenants: any }>(url, 'query($after: String) { tenants(sort: ID, first: 1, after: $after) { edges { node { id } } } }', {
      after: first.data!.tenants.pageInfo.endCursor,
    });
    expect(next.data!.tenants.edges.map((e: any) => e.node.id)).toEqual(['api-b']);
    const byVelocity = await gql<{ tenants: any }>(url, '{ tenants(sort: TOKEN_VELOCITY, filter: { idPrefix: "api-" }) { edges { node { id metrics { tokenVelocity60s } } } } }');
    expect(byVelocity.data!.tenants.edges[0].node.id).toBe('api-a');
  });

  it('run: steps from storage, decision', async () => {
    const res = await gql<{ run: any }>(url, '{ run(tenantId: "api-a", runId: "r1") { runId metrics { stepCount } steps { operation toolName inputTokens } decision { action scope } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data!.run.steps).toHaveLength(8);
    expect(res.data!.run.steps.filter((s: any) => s.operation === 'execute_tool').map((s: any) => s.toolName)).toEqual(['search', 'search', 'search']);
    expect(res.data!.run.decision).toEqual({ action: 'ALLOW', scope: 'RUN' });
    const missing = await gql<{ run: unknown }>(url, '{ run(tenantId: "api-a", runId: "nope") { runId } }');
    expect(missing.data!.run).toBeNull();
  });

  it('takes relative ranges, defaults to the last hour, and answers null for an unknown tenant', async () => {
    const res = await gql<{ tenant: Record<string, any> }>(
      url,
      `{ tenant(id: "api-a") {
        lastHour: timeseries(metric: TOKENS, last: "1h") { value }
        byDefault: timeseries(metric: TOKENS) { value }
        before: timeseries(metric: TOKENS, last: "1h", to: "2026-01-01T00:00:00Z") { value }
        cost: costAttribution(last: "90m") { calls }
        costByDefault: costAttribution { calls }
      } }`,
    );
    expect(res.errors).toBeUndefined();
    const sum = (points: { value: number }[]) => points.reduce((n, p) => n + p.value, 0);
    expect(sum(res.data!.tenant.lastHour)).toBe(600);
    expect(sum(res.data!.tenant.byDefault)).toBe(600);
    expect(res.data!.tenant.before).toEqual([]);
    expect(res.data!.tenant.cost).toEqual([{ calls: 5 }]);
    expect(res.data!.tenant.costByDefault).toEqual([{ calls: 5 }]);

    const unknown = await gql<{ typo: unknown; known: unknown }>(url, '{ typo: tenant(id: "api-aa") { id decision { action } } known: tenant(id: "api-b") { id } }');
    expect(unknown.errors).toBeUndefined();
    expect(unknown.data).toEqual({ typo: null, known: { id: 'api-b' } });
  });

  it.each([
    ['timeseries(metric: SPANS, last: "1 hour") { value }', /last must be a positive whole number with a unit/],
    ['timeseries(metric: SPANS, last: "0h") { value }', /last must be a positive whole number/],
    ['costAttribution(last: "1h", from: "2026-01-01T00:00:00Z") { day }', /either last or from/],
    ['auditEvents(last: "-5m") { kind }', /last must be a positive whole number/],
  ])('refuses the range in %s with BAD_USER_INPUT', async (field, message) => {
    const res = await gql(url, `{ tenant(id: "api-a") { ${field} } }`);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toMatch(message);
  });

  it('rejects bad ranges and oversized pages with BAD_USER_INPUT', async () => {
    const res = await gql(url, '{ tenant(id: "api-a") { timeseries(metric: SPANS, from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z") { value } } }');
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const date = await gql(url, '{ tenant(id: "api-a") { costAttribution(from: "yesterday", to: "2026-01-01T00:00:00Z") { day } } }');
    expect(date.errors?.[0]?.message).toMatch(/DateTime must be an ISO-8601 string/);
  });
});

describe('mutations change policy and breakers, audited, and subscriptions carry the decisions', () => {
  it('a threshold lowered through the API halts the run, seen over SSE and WebSocket', async () => {
    const sse = subscribeSse<DecisionMsg>(url, DECISIONS, { t: 'api-c' });
    const ws = subscribeWs<DecisionMsg>(url, DECISIONS, { t: 'api-c', r: 'loop' });
    // A new subscriber gets the current decision at once.
    await ws.waitFor((m) => m.decisions.action === 'ALLOW');

    const set = await gql<{ setTenantPolicy: any }>(url, 'mutation { setTenantPolicy(tenantId: "api-c", policy: { run: { toolCallsPerMinute: 2 } }) { tier run { toolCallsPerMinute } overrides } }');
    expect(set.errors).toBeUndefined();
    expect(set.data!.setTenantPolicy).toMatchObject({ tier: 'free', run: { toolCallsPerMinute: 2 }, overrides: { run: { toolCallsPerMinute: 2 } } });

    expect((await postSpans(service.otlpUrl, runSteps('api-c', 'loop', [{ tool: 'a' }, { tool: 'b' }, { tool: 'c' }]))).status).toBe(200);
    const halt = { action: 'HALT', state: 'OPEN', metric: 'toolCallsPerMinute', threshold: 2, observed: 3 };
    expect((await sse.waitFor((m) => m.decisions.action === 'HALT')).decisions).toMatchObject({ ...halt, runId: 'loop' });
    expect((await ws.waitFor((m) => m.decisions.action === 'HALT')).decisions).toMatchObject({ ...halt, runId: 'loop' });
    sse.close();
    ws.close();

    const decision = await gql<{ decision: any }>(url, '{ decision(tenantId: "api-c", runId: "loop") { action state retryAfterMs reason } }');
    expect(decision.data!.decision).toMatchObject({ action: 'HALT', state: 'OPEN' });
    expect(decision.data!.decision.retryAfterMs).toBeGreaterThan(0);
  });

  it('force-open, reset and escalation acknowledgement are audited with the actor; the chain verifies', async () => {
    const events = subscribeSse<{ breakerEvents: any }>(url, 'subscription { breakerEvents(tenantId: "api-d") { kind oldState newState actor reason } }', {});
    const forced = await gql<{ forceOpenBreaker: any }>(url, 'mutation { forceOpenBreaker(tenantId: "api-d", reason: "incident 42", durationMs: 60000) { scope state decision { action state reason } } }');
    expect(forced.errors).toBeUndefined();
    expect(forced.data!.forceOpenBreaker).toMatchObject({ scope: 'TENANT', state: 'FORCED_OPEN', decision: { action: 'HALT', state: 'FORCED_OPEN' } });
    expect((await gql<{ decision: any }>(url, '{ decision(tenantId: "api-d", runId: "any-run") { action } }')).data!.decision.action).toBe('HALT');
    await events.waitFor((m) => m.breakerEvents.newState === 'FORCED_OPEN');

    const reset = await gql<{ resetBreaker: any }>(url, 'mutation { resetBreaker(tenantId: "api-d") { state decision { action } } }');
    expect(reset.data!.resetBreaker).toEqual({ state: 'CLOSED', decision: { action: 'ALLOW' } });
    const ack = await gql<{ acknowledgeEscalation: any }>(url, 'mutation { acknowledgeEscalation(tenantId: "api-d", note: "looked at it") { kind actor reason } }');
    expect(ack.data!.acknowledgeEscalation).toEqual({ kind: 'escalation_ack', actor: 'anonymous', reason: 'looked at it' });
    events.close();

    const audit = await gql<{ tenant: any; verifyAuditLog: any }>(url, '{ tenant(id: "api-d") { auditEvents(first: 10) { kind oldState newState actor reason } } verifyAuditLog(tenantId: "api-d") { ok events } }');
    expect(audit.data!.tenant.auditEvents.map((e: any) => [e.kind, e.newState])).toEqual([
      ['escalation_ack', ''],
      ['operator_action', 'CLOSED'],
      ['operator_action', 'FORCED_OPEN'],
    ]);
    expect(audit.data!.verifyAuditLog).toEqual({ ok: true, events: 3 });
    const ranged = await gql<{ tenant: any }>(url, '{ tenant(id: "api-d") { recent: auditEvents(last: "1h") { kind } old: auditEvents(last: "1h", to: "2020-01-01T00:00:00Z") { kind } } }');
    expect(ranged.data!.tenant.recent).toHaveLength(3);
    expect(ranged.data!.tenant.old).toEqual([]);
  });

  it('refuses an invalid policy with the key path, and changes nothing', async () => {
    const res = await gql(url, 'mutation { setTenantPolicy(tenantId: "api-e", policy: { run: { stepCount: -5 } }) { tier } }');
    expect(res.errors?.[0]?.extensions?.code).toBe('POLICY_INVALID');
    expect(JSON.stringify(res.errors?.[0]?.extensions?.issues)).toMatch(/stepCount/);
    const after = await gql<{ effectivePolicy: any; tenant: unknown }>(url, '{ effectivePolicy(tenantId: "api-e") { policy { run { stepCount } } } tenant(id: "api-e") { id } }');
    expect(after.data!.effectivePolicy.policy.run.stepCount).not.toBe(-5);
    // nothing was created for it either
    expect(after.data!.tenant).toBeNull();
  });

  it('persists run-time policy changes in ClickHouse', async () => {
    const rows = await service.store.client.query({ query: "SELECT Kind, TenantId, Actor FROM policy_changes WHERE TenantId = 'api-c'", format: 'JSONEachRow' });
    expect(await rows.json()).toEqual([{ Kind: 'setTenantPolicy', TenantId: 'api-c', Actor: 'anonymous' }]);
  });
});

describe('limits', () => {
  it('refuses deep queries, alias floods, costly pages and oversized bodies with clear errors', async () => {
    const legit = await gql(url, '{ tenants { edges { node { activeRuns { decision { tenantId } } breakers { decision { tenantId } } } } } }');
    expect(legit.errors).toBeUndefined();
    let nested = 'name';
    for (let i = 0; i < 20; i++) nested = `ofType { ${nested} }`;
    const tooDeep = await gql(url, `{ __schema { types { fields { type { ${nested} } } } } }`);
    expect(tooDeep.errors?.[0]?.message).toMatch(/Query depth limit of 15 exceeded/);
    const costly = await gql(url, '{ tenants(first: 100000) { totalCount edges { node { id } } } }');
    expect(costly.errors?.[0]?.message).toMatch(/Query Cost limit of 5000 exceeded/);
    const page = await gql(url, '{ tenants(first: 600) { totalCount } }');
    expect(page.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const aliases = Array.from({ length: 40 }, (_, i) => `a${i}: decision(tenantId: "api-a") { action }`).join(' ');
    const flood = await gql(url, `{ ${aliases} }`);
    expect(flood.errors?.[0]?.message).toMatch(/aliases/i);
    const big = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: `{ __typename }`, pad: 'x'.repeat(100_000) }) });
    expect(big.status).toBe(413);
  });
});

describe('subscriptions over SSE', () => {
  it('answers a malformed, invalid or alias-flooding subscription with its GraphQL error', async () => {
    const cases: [string, RegExp][] = [
      ['subscription { decisions(tenantId: "api-a") {', /Syntax Error/],
      ['subscription { decisions(tenantId: "api-a") { nope } }', /Cannot query field "nope"/],
      ['subscription { decisions(tenantId: 5) { reason } }', /String cannot represent a non string value/],
      [`subscription { ${Array.from({ length: 40 }, (_, i) => `a${i}: decisions(tenantId: "api-a") { reason }`).join(' ')} }`, /aliases/i],
    ];
    for (const [query, message] of cases) {
      const sse = subscribeSse(url, query, {});
      await vi.waitFor(() => expect(sse.errors).not.toEqual([]), { timeout: 5_000 });
      expect((sse.errors.flat() as { message: string }[]).map((e) => e.message).join('\n')).toMatch(message);
      expect(sse.messages).toEqual([]);
      sse.close();
    }
  });
});
