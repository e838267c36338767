import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { gql } from '../helpers/graphql.js';
import { recordingTracer } from '../helpers/otel.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans } from '../helpers/spans.js';

// The red team's two findings through real OTLP ingest and the GraphQL API: 429s named only by
// error.type HALTed a tenant on errorRatio, and Python OpenInference's 5xx (status ERROR and an
// exception event, no error.type, no status code) opened no provider breaker.

const POLICY = `
degradation:
  providerHealth: { minimumCalls: 5, failureRateThreshold: 0.5 }
  defaults:
    tiers:
      - { tier: 0, provider: openai, model: gpt-4o }
      - { tier: 1, provider: azure.ai.openai, model: gpt-4o }
  tenants:
    claude-t:
      tiers:
        - { tier: 0, provider: anthropic, model: claude-sonnet-4-5 }
        - { tier: 1, provider: aws.bedrock, model: claude-sonnet-4-5 }
`;

interface CallSpec {
  provider?: string;
  model?: string;
  attributes?: Attributes;
  /** status ERROR with this description */
  errorMessage?: string;
  exception?: { type: string; message: string };
}

/** One parentless model call per trace (each its own run), as client-level instrumentations export them. */
function calls(tenant: string, specs: CallSpec[]): Uint8Array {
  const { tracer, finished } = recordingTracer({ 'service.name': 'py-agent', 'tenant.id': tenant });
  for (const spec of specs) {
    const span = tracer.startSpan(`ChatCompletion`, {
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': spec.provider ?? 'openai',
        'gen_ai.request.model': spec.model ?? 'gpt-4o',
        ...spec.attributes,
      },
    });
    if (spec.exception) span.recordException({ name: spec.exception.type, message: spec.exception.message });
    if (spec.errorMessage !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: spec.errorMessage });
    span.end();
  }
  return ProtobufTraceSerializer.serializeRequest(finished())!;
}

let service: Service;

beforeAll(async () => {
  service = await startWithPolicy(POLICY);
});

afterAll(async () => {
  await service?.stop();
});

async function send(tenant: string, specs: CallSpec[]): Promise<void> {
  expect((await postSpans(service.otlpUrl, calls(tenant, specs))).status).toBe(200);
}

async function decision(tenant: string): Promise<{ action: string; tier: number | null; reason: string }> {
  const res = await gql<{ decision: { action: string; tier: number | null; reason: string } }>(
    service.graphqlUrl,
    'query($t: String!) { decision(tenantId: $t) { action tier reason } }',
    { t: tenant },
  );
  expect(res.errors).toBeUndefined();
  return res.data!.decision;
}

const rateLimited: CallSpec = {
  attributes: { 'error.type': 'RateLimitError' },
  errorMessage: "Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o on requests per min (RPM)'}}",
};

describe('errors classified by meaning, end to end', () => {
  it('30 429s named only by error.type RateLimitError do not trip errorRatio', async () => {
    await send('limited-t', Array.from({ length: 30 }, () => rateLimited));
    const d = await decision('limited-t');
    expect(d.reason).not.toMatch(/errorRatio/);
    expect(d.action).not.toBe('HALT');
  });

  it('the same 30 calls failing with the agent own error do trip it (the control)', async () => {
    await send('failing-t', Array.from({ length: 30 }, () => ({ attributes: { 'error.type': 'ValueError' }, errorMessage: 'bad JSON' })));
    const d = await decision('failing-t');
    expect(d).toMatchObject({ action: 'HALT' });
    expect(d.reason).toMatch(/errorRatio/);
  });

  it("Python OpenInference's 5xx (status ERROR, an exception event, no error.type) opens the provider breaker", async () => {
    const message = "Error code: 503 - {'error': {'message': 'The server is temporarily unavailable'}}";
    await send('py-5xx-t', Array.from({ length: 6 }, () => ({ errorMessage: `APIStatusError: ${message}`, exception: { type: 'APIStatusError', message } })));
    expect(await decision('py-5xx-t')).toMatchObject({ action: 'DEGRADE', tier: 1 });
  });

  it("an exception event saying Anthropic is overloaded (529) opens the provider breaker", async () => {
    const message = "Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}}";
    await send('claude-t', Array.from({ length: 6 }, () => ({ provider: 'anthropic', model: 'claude-sonnet-4-5', errorMessage: message, exception: { type: 'APIStatusError', message } })));
    expect(await decision('claude-t')).toMatchObject({ action: 'DEGRADE', tier: 1 });
  });
});
