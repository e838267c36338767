import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { referenceDecode, referenceEncode } from '../../src/codecs/otlp-proto-schema.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { gql } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans } from '../helpers/spans.js';

// What real Python GenAI instrumentations export, replayed through a real Breakwater. The bodies
// were recorded from the packages by test/conformance/python/record.py (six model calls: two with
// tool_calls, one 429, one 500, three with a dated response model); only their timestamps are moved
// to now, so the live windows and the retention window take them.

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'python');

function replayable(setup: string): Uint8Array[] {
  const dir = join(FIXTURES, setup);
  return readdirSync(dir)
    .filter((name) => name.endsWith('.pb'))
    .sort()
    .map((name) => {
      const request = referenceDecode(readFileSync(join(dir, name)));
      let last = 0n;
      for (const rs of request.resourceSpans) for (const ss of rs.scopeSpans) for (const span of ss.spans) if (span.endTimeUnixNano > last) last = span.endTimeUnixNano;
      const shift = BigInt(Date.now()) * 1_000_000n - last;
      for (const rs of request.resourceSpans) {
        for (const ss of rs.scopeSpans) {
          for (const span of ss.spans) {
            span.startTimeUnixNano += shift;
            span.endTimeUnixNano += shift;
            for (const event of span.events) event.timeUnixNano += shift;
          }
        }
      }
      return referenceEncode(request);
    });
}

let service: Service;

beforeAll(async () => {
  // The error ratio counts from the first call, so six calls say something.
  service = await startWithPolicy('defaultTier: replay\ntiers:\n  replay:\n    extends: free\n    errorRatio: { minCalls: 1, lastN: 50 }\n');
});

afterAll(async () => {
  await service?.stop();
});

interface Row {
  operation: string;
  provider: string;
  requestModel: string;
  responseModel: string;
  input: string;
  output: string;
  errorClass: string;
  runId: string;
  quotaTokens: string;
}

async function modelCalls(tenant: string): Promise<Row[]> {
  return queryRows<Row>(
    service.store.client,
    `SELECT Operation AS operation, Provider AS provider, RequestModel AS requestModel, ResponseModel AS responseModel,
            toString(InputTokens) AS input, toString(OutputTokens) AS output, ErrorClass AS errorClass, RunId AS runId,
            toString(RateLimitRemainingTokens) AS quotaTokens
     FROM spans WHERE TenantId = {tenant:String} AND Operation != '' ORDER BY StartTime`,
    { tenant },
  );
}

async function rolledUpModelCalls(tenant: string): Promise<number> {
  const [row] = await queryRows<{ n: string }>(service.store.client, 'SELECT toString(sum(ModelCalls)) AS n FROM spans_tenant_minute WHERE TenantId = {tenant:String}', { tenant });
  return Number(row!.n);
}

async function liveErrorRatio(tenant: string): Promise<number> {
  const res = await gql<{ tenant: { metrics: { errorRatio: number; modelCallsPerMinute: number } } }>(service.graphqlUrl, 'query($t: String!) { tenant(id: $t) { metrics { errorRatio modelCallsPerMinute } } }', { t: tenant });
  expect(res.errors).toBeUndefined();
  return res.data!.tenant.metrics.errorRatio;
}

const sum = (rows: Row[], field: 'input' | 'output') => rows.reduce((n, row) => n + Number(row[field]), 0);

describe.each([
  { setup: 'openai-v2', tenant: 'py-openai-v2', requestModel: 'gpt-4o-mini' },
  { setup: 'openinference', tenant: 'py-openinference', requestModel: 'gpt-4o-mini-2024-07-18' },
  { setup: 'openllmetry', tenant: 'py-openllmetry', requestModel: 'gpt-4o-mini' },
])('replayed Python $setup export', ({ setup, tenant, requestModel }) => {
  let calls: Row[];

  beforeAll(async () => {
    for (const body of replayable(setup)) expect((await postSpans(service.otlpUrl, body)).status).toBe(200);
    calls = await modelCalls(tenant);
  });

  it('stores six model calls of the tenant named only in OTEL_RESOURCE_ATTRIBUTES, with provider and tokens', async () => {
    expect(calls.map((c) => c.operation)).toEqual(Array(6).fill('chat'));
    expect(new Set(calls.map((c) => c.provider))).toEqual(new Set(['openai']));
    expect(sum(calls, 'input')).toBe(100 + 110 + 120 + 150);
    expect(sum(calls, 'output')).toBe(20 + 21 + 22 + 25);
    expect(await rolledUpModelCalls(tenant)).toBe(6);
  });

  it('reads the request and the dated response models', () => {
    const answered = calls.filter((c) => c.errorClass === 'ok');
    expect(answered).toHaveLength(4);
    for (const call of answered) expect(call.responseModel || call.requestModel).toBe('gpt-4o-mini-2024-07-18');
    if (setup !== 'openinference') for (const call of calls) expect(call.requestModel).toBe(requestModel);
  });

  it('classes the 429 as a rate limit and the 500 as a provider error, neither in the error ratio', async () => {
    expect(calls.map((c) => c.errorClass).sort()).toEqual(['ok', 'ok', 'ok', 'ok', 'provider_error', 'rate_limited']);
    // Counted from the first call: a 429 counted would make it 1/6. The 500 is the provider's, which
    // opens provider breakers and never counts in a tenant's error ratio.
    expect(await liveErrorRatio(tenant)).toBe(0);
  });
});

describe('replayed Python exports: what only some setups carry', () => {
  it('openai-v2 with httpx header capture: the quota headers of the HTTP child spans reach the key quota', async () => {
    const calls = await modelCalls('py-openai-v2');
    expect(calls.every((c) => c.quotaTokens === '180000')).toBe(true);
    const res = await gql<{ tenant: { degradation: { status: { keys: { key: string; limitTokens: number; remainingTokens: number; limitRequests: number }[] } } } }>(
      service.graphqlUrl,
      'query { tenant(id: "py-openai-v2") { degradation { status } } }',
    );
    expect(res.data!.tenant.degradation.status.keys).toEqual([expect.objectContaining({ key: 'openai', limitTokens: 200_000, remainingTokens: 180_000, limitRequests: 500 })]);
  });

  it('OpenInference with using_session: the parentless calls are one run', async () => {
    const calls = await modelCalls('py-openinference');
    expect(new Set(calls.map((c) => c.runId))).toEqual(new Set(['conv-py-1']));
  });
});
