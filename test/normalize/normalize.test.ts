import { describe, expect, it } from 'vitest';
import { normalizeRequest, retryAfterMs } from '../../src/normalize/normalize.js';
import type { AnyValue, KeyValue, OtlpTraceRequest } from '../../src/codecs/otlp-model.js';

const TRACE = '0102030405060708090a0b0c0d0e0f10';

function request(spanAttributes: Record<string, AnyValue>, resource: Record<string, AnyValue> = { 'tenant.id': 't' }, status = 0): OtlpTraceRequest {
  const kv = (o: Record<string, AnyValue>): KeyValue[] => Object.entries(o).map(([key, value]) => ({ key, value }));
  return {
    resourceSpans: [
      {
        resource: { attributes: kv(resource), droppedAttributesCount: 0 },
        schemaUrl: '',
        scopeSpans: [
          {
            scope: { name: 's', version: '1', attributes: [], droppedAttributesCount: 0 },
            schemaUrl: '',
            spans: [
              {
                traceId: TRACE,
                spanId: '0102030405060708',
                traceState: '',
                parentSpanId: '',
                flags: 0,
                name: 'x',
                kind: 1,
                startTimeUnixNano: 1n,
                endTimeUnixNano: 2n,
                attributes: kv(spanAttributes),
                droppedAttributesCount: 0,
                events: [],
                droppedEventsCount: 0,
                links: [],
                droppedLinksCount: 0,
                status: { code: status, message: '' },
              },
            ],
          },
        ],
      },
    ],
  };
}

function one(spanAttributes: Record<string, AnyValue>, resource?: Record<string, AnyValue>, status?: number) {
  const result = normalizeRequest(request(spanAttributes, resource, status), { requireTenant: true });
  expect(result.rejected).toBe(0);
  return result.spans[0]!;
}

describe('normalization of GenAI semantic conventions and their neighbours', () => {
  it('reads the current GenAI names', () => {
    expect(
      one({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'anthropic',
        'gen_ai.request.model': 'claude',
        'gen_ai.response.model': 'claude-2025',
        'gen_ai.usage.input_tokens': 10n,
        'gen_ai.usage.output_tokens': 5n,
        'gen_ai.agent.id': 'a1',
        'gen_ai.agent.name': 'support',
        'gen_ai.conversation.id': 'c1',
        'agent.run.id': 'run-1',
        'http.response.status_code': 429n,
      }),
    ).toMatchObject({
      tenantId: 't',
      runId: 'run-1',
      operation: 'chat',
      provider: 'anthropic',
      requestModel: 'claude',
      responseModel: 'claude-2025',
      inputTokens: 10,
      outputTokens: 5,
      agentId: 'a1',
      agentName: 'support',
      conversationId: 'c1',
      httpStatusCode: 429,
      depth: -1,
    });
  });

  it('accepts OpenLLMetry names (gen_ai.system, prompt/completion tokens)', () => {
    expect(one({ 'gen_ai.system': 'openai', 'gen_ai.usage.prompt_tokens': 7n, 'gen_ai.usage.completion_tokens': 3n, 'gen_ai.operation.name': 'chat' })).toMatchObject({
      provider: 'openai',
      inputTokens: 7,
      outputTokens: 3,
    });
  });

  it('prefers gen_ai.provider.name over gen_ai.system whatever the order', () => {
    expect(one({ 'gen_ai.provider.name': 'azure.ai.openai', 'gen_ai.system': 'openai' }).provider).toBe('azure.ai.openai');
    expect(one({ 'gen_ai.system': 'openai', 'gen_ai.provider.name': 'azure.ai.openai' }).provider).toBe('azure.ai.openai');
  });

  it.each([
    ['LLM', 'chat'],
    ['TOOL', 'execute_tool'],
    ['AGENT', 'invoke_agent'],
    ['EMBEDDING', 'embeddings'],
    ['RETRIEVER', 'retrieval'],
    ['CHAIN', ''],
  ])('maps OpenInference span kind %s to operation %j', (kind, operation) => {
    expect(one({ 'openinference.span.kind': kind, 'llm.token_count.prompt': 4n, 'llm.token_count.completion': 2n, 'llm.model_name': 'm' })).toMatchObject({
      operation,
      inputTokens: 4,
      outputTokens: 2,
      requestModel: 'm',
    });
  });

  it('treats a span with only a tool name as a tool call', () => {
    expect(one({ 'gen_ai.tool.name': 'search' })).toMatchObject({ operation: 'execute_tool', toolName: 'search' });
  });

  it('takes tenant.id from the span over the resource, and the trace id as the run when agent.run.id is absent', () => {
    expect(one({ 'tenant.id': 'from-span' }, { 'tenant.id': 'from-resource' })).toMatchObject({ tenantId: 'from-span', runId: TRACE });
  });

  it('marks errors: error.type, and status ERROR without one as _OTHER', () => {
    expect(one({ 'error.type': 'timeout' })).toMatchObject({ isError: true, errorType: 'timeout' });
    expect(one({}, undefined, 2)).toMatchObject({ isError: true, errorType: '_OTHER' });
    expect(one({})).toMatchObject({ isError: false, errorType: '' });
  });

  it('reads rate-limit headers bare or as http.response.header.* string arrays', () => {
    expect(
      one({
        'http.response.header.x-ratelimit-remaining-requests': ['12'],
        'x-ratelimit-remaining-tokens': 3400n,
        'x-ratelimit-limit-requests': '500',
        'http.response.header.x-ratelimit-limit-tokens': ['90000'],
        'http.response.header.retry-after': ['1.5'],
      }),
    ).toMatchObject({ rateLimitRemainingRequests: 12, rateLimitRemainingTokens: 3400, rateLimitLimitRequests: 500, rateLimitLimitTokens: 90000, retryAfterMs: 1500 });
  });

  it('reads rate-limit headers spelled with underscores, as Python HTTP instrumentations record them', () => {
    expect(
      one({
        'http.response.header.x_ratelimit_remaining_requests': ['12'],
        'x_ratelimit_remaining_tokens': '3400',
        'http.response.header.x_ratelimit_limit_tokens': ['90000'],
        'http.response.header.retry_after': ['2'],
        'http.response.header.anthropic_ratelimit_requests_limit': ['50'],
      }),
    ).toMatchObject({ rateLimitRemainingRequests: 12, rateLimitRemainingTokens: 3400, rateLimitLimitTokens: 90000, retryAfterMs: 2000, rateLimitLimitRequests: 50 });
  });

  it('gives a model call the rate-limit headers of its HTTP child span, keeping its own where it has them', () => {
    const req = request({ 'gen_ai.operation.name': 'chat', 'x-ratelimit-limit-tokens': '500' });
    const spans = req.resourceSpans[0]!.scopeSpans[0]!.spans;
    const parent = spans[0]!;
    const child = { ...parent, spanId: '1112131415161718', parentSpanId: parent.spanId, attributes: [
      { key: 'http.response.header.x_ratelimit_remaining_tokens', value: ['70'] },
      { key: 'http.response.header.x_ratelimit_limit_tokens', value: ['1000'] },
    ] };
    const stranger = { ...child, spanId: '2122232425262728', parentSpanId: 'ffffffffffffffff' };
    spans.unshift(child, stranger);
    const { spans: out } = normalizeRequest(req, { requireTenant: true });
    const call = out.find((s) => s.spanId === parent.spanId)!;
    expect(call).toMatchObject({ rateLimitRemainingTokens: 70, rateLimitLimitTokens: 500, rateLimitRemainingRequests: -1 });
  });

  it("reads Anthropic's rate-limit headers into the same columns; OpenAI's x-ratelimit-* wins when both are there", () => {
    expect(
      one({
        'http.response.header.anthropic-ratelimit-requests-remaining': ['7'],
        'anthropic-ratelimit-requests-limit': 50n,
        'anthropic-ratelimit-tokens-remaining': '12000',
        'http.response.header.anthropic-ratelimit-tokens-limit': ['80000'],
        'anthropic-ratelimit-tokens-reset': '2026-11-27T15:00:00Z',
      }),
    ).toMatchObject({ rateLimitRemainingRequests: 7, rateLimitLimitRequests: 50, rateLimitRemainingTokens: 12000, rateLimitLimitTokens: 80000, retryAfterMs: -1 });
    for (const attributes of [
      { 'anthropic-ratelimit-requests-remaining': '7', 'x-ratelimit-remaining-requests': '3' },
      { 'x-ratelimit-remaining-requests': '3', 'anthropic-ratelimit-requests-remaining': '7' },
    ]) {
      expect(one(attributes).rateLimitRemainingRequests).toBe(3);
    }
    expect(one({ 'anthropic-ratelimit-requests-remaining': '-4' }).rateLimitRemainingRequests).toBe(-1);
  });

  it('clamps hostile numbers instead of storing them', () => {
    expect(one({ 'gen_ai.usage.input_tokens': -5n, 'gen_ai.usage.output_tokens': 99999999999999n, 'agent.depth': 1e9 })).toMatchObject({
      inputTokens: 0,
      outputTokens: 0xffffffff,
      depth: 1000,
    });
    expect(one({ 'gen_ai.usage.input_tokens': 'lots', 'http.response.status_code': NaN })).toMatchObject({ inputTokens: 0, httpStatusCode: 0 });
  });

  it('keeps every attribute, known or not', () => {
    const span = one({ 'gen_ai.operation.name': 'chat', 'vendor.custom': { kvlist: [{ key: 'a', value: 1n }] } });
    expect(span.spanAttributes.map((a) => a.key)).toEqual(['gen_ai.operation.name', 'vendor.custom']);
  });

  it('rejects, with a reason per kind, spans without a tenant, with bad ids or a foreign tenant for the key', () => {
    const noTenant = normalizeRequest(request({}, {}), { requireTenant: true });
    expect(noTenant).toMatchObject({ rejected: 1, errorMessage: '1 span(s) rejected: missing tenant.id (set it on the resource or the span)' });
    expect(normalizeRequest(request({}, {}), { requireTenant: false }).spans[0]!.tenantId).toBe('');
    const foreign = normalizeRequest(request({}), { requireTenant: true, keyTenant: 'other' });
    expect(foreign.errorMessage).toMatch(/does not match the ingest key/);
    const longRun = normalizeRequest(request({ 'agent.run.id': 'r'.repeat(300) }), { requireTenant: true });
    expect(longRun.errorMessage).toMatch(/agent.run.id longer than 256/);
  });
});

describe('retryAfterMs', () => {
  it('reads delta-seconds, fractional seconds and HTTP dates', () => {
    expect(retryAfterMs('20')).toBe(20_000);
    expect(retryAfterMs('0.25')).toBe(250);
    expect(retryAfterMs('')).toBe(-1);
    expect(retryAfterMs('soon')).toBe(-1);
    expect(retryAfterMs('-3')).toBe(-1);
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    expect(retryAfterMs(inAMinute)).toBeGreaterThan(55_000);
  });
});
