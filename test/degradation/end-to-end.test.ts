import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { gql, subscribeSse } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans, runSteps, type StepSpec } from '../helpers/spans.js';

// Degradation through real OTLP ingest and the GraphQL API: a 5xx storm opens the provider breaker
// and moves only tenants whose policy allows it; a 429 burst throttles and opens nothing; consent is
// given through the mutation.

const POLICY = `
degradation:
  providerHealth: { minimumCalls: 5, failureRateThreshold: 0.5, sharedMinTenants: 2 }
  defaults:
    tiers:
      - { tier: 0, provider: openai, model: gpt-4o }
      - { tier: 1, provider: azure.ai.openai, model: gpt-4o }
      - { tier: 3, provider: openai, model: gpt-4o-mini }
  tenants:
    strict: { permittedTiers: [0, 4] }
    careful: { consent: { required: true, fromTier: 1 } }
    quota-t:
      tiers: [{ tier: 0, provider: anthropic, model: claude-sonnet-4-5 }]
    tasky:
      tasks:
        summarize: { permittedTiers: [0, 1] }
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

const ok: StepSpec = { model: 'gpt-4o', attributes: { 'gen_ai.provider.name': 'openai' } };
const serverError: StepSpec = { model: 'gpt-4o', outputTokens: 0, attributes: { 'gen_ai.provider.name': 'openai', 'http.response.status_code': 503, 'error.type': '503' } };

async function send(tenant: string, steps: StepSpec[]): Promise<void> {
  expect((await postSpans(service.otlpUrl, runSteps(tenant, `${tenant}-run`, steps))).status).toBe(200);
}

async function decision(tenant: string) {
  const res = await gql<{ decision: Record<string, unknown> }>(url, 'query($t: String!) { decision(tenantId: $t) { action state scope tier fallbackModel degraded retryAfterMs reason } }', { t: tenant });
  expect(res.errors).toBeUndefined();
  return res.data!.decision;
}

describe('graceful degradation end to end', () => {
  it('a 5xx storm degrades the tenant that allows it and suspends the one that does not', async () => {
    const subscribed = subscribeSse<{ breakerEvents: Record<string, unknown> }>(
      url,
      'subscription { breakerEvents(tenantId: "flex") { kind tenantId runId scope oldState newState metric threshold observed reason actor time details } }',
      {},
    );
    for (const tenant of ['flex', 'strict', 'careful']) await send(tenant, [ok]);
    await send('flex', Array.from({ length: 6 }, () => serverError));
    await send('strict', Array.from({ length: 6 }, () => serverError));

    expect(await decision('flex')).toMatchObject({ action: 'DEGRADE', tier: 1, fallbackModel: 'gpt-4o', degraded: true });
    const strict = await decision('strict');
    expect(strict).toMatchObject({ action: 'HALT', tier: 4, degraded: true, fallbackModel: null });
    expect(strict.retryAfterMs).toBeGreaterThan(0);

    // The audit write happens off the decision path: poll for it, bounded.
    let events: { oldState: string; newState: string }[] = [];
    for (let i = 0; i < 50 && events.length === 0; i++) {
      const res = await gql<{ tenant: { degradationEvents: { oldState: string; newState: string }[] } }>(url, '{ tenant(id: "flex") { degradationEvents { oldState newState } } }');
      events = res.data!.tenant.degradationEvents;
      if (events.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(events).toContainEqual({ oldState: 'TIER_0', newState: 'TIER_1' });

    // the tier change reaches a subscriber selecting every field
    const pushed = await subscribed.waitFor((m) => m.breakerEvents.kind === 'degradation' && m.breakerEvents.newState === 'TIER_1');
    expect(JSON.stringify(subscribed.errors)).toBe('[]');
    expect(pushed.breakerEvents).toMatchObject({ tenantId: 'flex', oldState: 'TIER_0', newState: 'TIER_1', actor: 'breakwater', details: { event: 'tier_change', cause: 'demote', from: { tier: 0 }, to: { tier: 1, provider: 'azure.ai.openai' } } });
    subscribed.close();
  });

  it('asks a tenant that requires consent, and switches only once it is given through the API', async () => {
    // The shared openai breaker is open: careful's next call finds it so.
    await send('careful', [ok]);
    const before = await gql<{ tenant: { degradation: { pendingConsents: { id: string; to: { tier: number; model: string } }[] } } }>(
      url,
      '{ tenant(id: "careful") { degradation { pendingConsents { id to { tier model } } } } }',
    );
    const pending = before.data!.tenant.degradation.pendingConsents;
    expect(pending).toHaveLength(1);
    expect(pending[0]!.to).toEqual({ tier: 1, model: 'gpt-4o' });
    expect((await decision('careful')).action).not.toBe('DEGRADE');

    const answer = await gql<{ approveDegradation: { decision: { action: string; tier: number } } }>(
      url,
      'mutation($id: String!) { approveDegradation(tenantId: "careful", requestId: $id) { decision { action tier } } }',
      { id: pending[0]!.id },
    );
    expect(answer.errors).toBeUndefined();
    expect(answer.data!.approveDegradation.decision).toEqual({ action: 'DEGRADE', tier: 1 });
    expect(await decision('careful')).toMatchObject({ action: 'DEGRADE', tier: 1 });

    const again = await gql(url, 'mutation($id: String!) { approveDegradation(tenantId: "careful", requestId: $id) { decision { action } } }', { id: pending[0]!.id });
    expect(again.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('a 429 burst throttles with the provider’s retry-after and opens no breaker', async () => {
    const limited: StepSpec = {
      model: 'claude-sonnet-4-5',
      inputTokens: 0,
      outputTokens: 0,
      attributes: { 'gen_ai.provider.name': 'anthropic', 'http.response.status_code': 429, 'error.type': 'rate_limit_exceeded', 'http.response.header.retry-after': ['20'] },
    };
    await send('quota-t', [{ model: 'claude-sonnet-4-5', attributes: { 'gen_ai.provider.name': 'anthropic' } }]);
    await send('quota-t', Array.from({ length: 10 }, () => limited));
    const throttled = await decision('quota-t');
    expect(throttled).toMatchObject({ action: 'THROTTLE' });
    expect(throttled.retryAfterMs).toBeGreaterThan(15_000);
    expect(throttled.retryAfterMs).toBeLessThanOrEqual(20_000);
    const breakers = service.core.degradation.providerBreakers('*').filter((b) => b.key.provider === 'anthropic');
    expect(breakers.every((b) => b.state === 'CLOSED')).toBe(true);
  });

  it('counts a task-level degradation in the fleet view and its tripping filter', async () => {
    // The shared openai breaker is still open: the summarize run degrades by its task's ladder.
    await send('tasky', [{ ...ok, attributes: { ...ok.attributes, 'breakwater.task': 'summarize' } }]);
    const res = await gql<{ tripping: { edges: { node: { id: string; decision: { action: string; runId: string | null; tier: number } } }[] }; calm: { totalCount: number } }>(
      url,
      '{ tripping: tenants(filter: { tripping: true, idPrefix: "tasky" }) { edges { node { id decision { action runId tier } } } } calm: tenants(filter: { tripping: false, idPrefix: "tasky" }) { totalCount } }',
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.tripping.edges.map((e) => e.node)).toEqual([{ id: 'tasky', decision: { action: 'DEGRADE', runId: 'tasky-run', tier: 1 } }]);
    expect(res.data!.calm.totalCount).toBe(0);
  });

  it('reserves pre-flight tokens from the tenant bucket through the API', async () => {
    const res = await gql<{ reserveQuota: { granted: boolean; retryAfterMs: number } }>(url, 'mutation { reserveQuota(tenantId: "flex", tokens: 100) { granted retryAfterMs } }');
    expect(res.errors).toBeUndefined();
    expect(res.data!.reserveQuota.granted).toBe(true);
    const bad = await gql(url, 'mutation { reserveQuota(tenantId: "flex", tokens: -1) { granted } }');
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
