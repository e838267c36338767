import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { context, trace, type Attributes } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { gql } from '../helpers/graphql.js';
import { recordingTracer } from '../helpers/otel.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans } from '../helpers/spans.js';

// Quota headers as real agents record them: not on the GenAI model-call span but on the HTTP client
// span under it (httpx, undici), in the semconv array form, with `_` (Python) or `-` separators.

let service: Service;

beforeAll(async () => {
  service = await startWithPolicy('tenants: {}\n');
});

afterAll(async () => {
  await service?.stop();
});

/** A model-call span with an HTTP client span under it carrying `headers`; the child ends first, as it does in a client. */
function callWithHttpChild(tenant: string, headers: Attributes): Uint8Array {
  const { tracer, finished } = recordingTracer({ 'service.name': 'py-agent', 'tenant.id': tenant });
  const call = tracer.startSpan('chat gpt-4o-mini', {
    attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.system': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.input_tokens': 50, 'gen_ai.usage.output_tokens': 5 },
  });
  const http = tracer.startSpan('POST', { attributes: { 'http.request.method': 'POST', 'http.response.status_code': 200, ...headers } }, trace.setSpan(context.active(), call));
  http.end();
  call.end();
  return ProtobufTraceSerializer.serializeRequest(finished())!;
}

interface KeyView {
  key: string;
  remainingRequests: number;
  limitRequests: number;
  remainingTokens: number;
  limitTokens: number;
  level: string;
}

async function keys(tenant: string): Promise<KeyView[]> {
  const res = await gql<{ tenant: { degradation: { status: { keys: KeyView[] } } } }>(service.graphqlUrl, 'query($t: String!) { tenant(id: $t) { degradation { status } } }', { t: tenant });
  expect(res.errors).toBeUndefined();
  return res.data!.tenant.degradation.status.keys;
}

describe('quota headers on the HTTP span under a model call', () => {
  it('reads underscore and hyphen spellings from the child into the key quota and the model call row', async () => {
    const body = callWithHttpChild('py-quota', {
      'http.response.header.x_ratelimit_remaining_tokens': ['150'],
      'http.response.header.x_ratelimit_limit_tokens': ['10000'],
      'http.response.header.x-ratelimit-remaining-requests': ['80'],
      'http.response.header.x-ratelimit-limit-requests': ['100'],
    });
    expect((await postSpans(service.otlpUrl, body)).status).toBe(200);

    const [quota] = await keys('py-quota');
    expect(quota).toMatchObject({ key: 'openai', remainingTokens: 150, limitTokens: 10000, remainingRequests: 80, limitRequests: 100, level: 'CRITICAL' });
    const rows = await queryRows<{ tokens: string; requests: string }>(
      service.store.client,
      "SELECT toString(RateLimitRemainingTokens) AS tokens, toString(RateLimitRemainingRequests) AS requests FROM spans WHERE TenantId = 'py-quota' AND SpanName LIKE 'chat%'",
    );
    expect(rows).toEqual([{ tokens: '150', requests: '80' }]);
  });
});
