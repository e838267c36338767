// Issue 20 over real HTTP: an agent loop instrumented without a parent span makes one trace per
// model call; sharing gen_ai.conversation.id makes it one run, so a per-run breaker trips. The
// stored rows carry that run, the provider as people name it, and a cost priced by the dated
// response model's family.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attributes } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { gql } from '../helpers/graphql.js';
import { recordingTracer } from '../helpers/otel.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans } from '../helpers/spans.js';

const POLICY = `
prices:
  gpt-4o-mini: { input: 0.15, output: 0.6 }
runKeys: [app.thread_id]
tiers:
  free:
    run:
      modelCallsPerMinute: 5
`;

let service: Service;

beforeAll(async () => {
  service = await startWithPolicy(POLICY);
});

afterAll(async () => {
  await service?.stop();
});

/** One exported request of one parentless model call: a new trace each time, as client instrumentations make. */
function modelCall(tenant: string, attributes: Attributes): Uint8Array {
  const { tracer, finished } = recordingTracer({ 'service.name': 'loop', 'tenant.id': tenant });
  tracer
    .startSpan('chat gpt-4o-mini', {
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
        'gen_ai.usage.input_tokens': 100,
        'gen_ai.usage.output_tokens': 20,
        ...attributes,
      },
    })
    .end();
  return ProtobufTraceSerializer.serializeRequest(finished())!;
}

const RUN = `query($t: String!, $r: String!) { run(tenantId: $t, runId: $r) { metrics { stepCount modelCallsPerMinute costUsd } decision { action metric } } }`;

interface RunAnswer {
  run: { metrics: { stepCount: number; modelCallsPerMinute: number; costUsd: number }; decision: { action: string; metric: string | null } } | null;
}

async function loop(tenant: string, calls: number, attributes: Attributes): Promise<void> {
  for (let i = 0; i < calls; i++) expect((await postSpans(service.otlpUrl, modelCall(tenant, attributes))).status).toBe(200);
}

const CALL_USD = (100 * 0.15 + 20 * 0.6) / 1e6;

describe('runs and prices from GenAI instrumentations without a parent span', () => {
  it('trips the per-run breaker of a 10-call loop sharing gen_ai.conversation.id across 10 traces, as one run', async () => {
    await loop('conv-tenant', 10, { 'gen_ai.system': 'openai', 'gen_ai.conversation.id': 'conv-loop' });

    const answer = await gql<RunAnswer>(service.graphqlUrl, RUN, { t: 'conv-tenant', r: 'conv-loop' });
    expect(answer.errors).toBeUndefined();
    expect(answer.data?.run?.metrics.stepCount).toBe(10);
    expect(answer.data?.run?.decision).toEqual({ action: 'HALT', metric: 'modelCallsPerMinute' });
    // The live window priced the dated response model by its family.
    expect(answer.data?.run?.metrics.costUsd).toBeCloseTo(10 * CALL_USD, 12);

    const rows = await queryRows<{ runs: string[]; traces: string; cost: number }>(
      service.store.client,
      `SELECT groupUniqArray(RunId) AS runs, toString(uniqExact(TraceId)) AS traces, sum(CostUsd) AS cost FROM spans WHERE TenantId = {t:String}`,
      { t: 'conv-tenant' },
    );
    expect(rows[0]).toMatchObject({ runs: ['conv-loop'], traces: '10' });
    // The stored cost column went through the same lookup.
    expect(Number(rows[0]!.cost)).toBeCloseTo(10 * CALL_USD, 12);
  });

  it("groups by the policy's run keys and stores Vercel's openai.chat as openai", async () => {
    await loop('key-tenant', 6, { 'ai.model.provider': 'openai.chat', 'app.thread_id': 'thread-7', 'session.id': 'broader-session' });

    const answer = await gql<RunAnswer>(service.graphqlUrl, RUN, { t: 'key-tenant', r: 'thread-7' });
    expect(answer.data?.run?.metrics.stepCount).toBe(6);
    expect(answer.data?.run?.decision.action).toBe('HALT');
    const rows = await queryRows<{ providers: string[] }>(service.store.client, `SELECT groupUniqArray(Provider) AS providers FROM spans WHERE TenantId = {t:String}`, { t: 'key-tenant' });
    expect(rows[0]!.providers).toEqual(['openai']);
  });

  it('stores the cost of a dated model the policy does not price from the built-in table', async () => {
    await loop('builtin-tenant', 1, { 'ai.model.provider': 'anthropic.messages', 'gen_ai.request.model': 'claude-3-5-sonnet', 'gen_ai.response.model': 'claude-3-5-sonnet-20241022' });
    const rows = await queryRows<{ cost: number; provider: string }>(service.store.client, `SELECT sum(CostUsd) AS cost, any(Provider) AS provider FROM spans WHERE TenantId = {t:String}`, { t: 'builtin-tenant' });
    expect(Number(rows[0]!.cost)).toBeCloseTo((100 * 3 + 20 * 15) / 1e6, 12);
    expect(rows[0]!.provider).toBe('anthropic');
  });
});
