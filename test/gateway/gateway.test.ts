// The model gateway end to end: the official openai and @anthropic-ai/sdk clients with only their
// base URL and key changed, a real Breakwater, and a mock upstream (the edge of the world).

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { gql } from '../helpers/graphql.js';
import { startMockUpstream, STREAMED_WORDS, type MockUpstream } from '../helpers/mock-llm-upstream.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { writePolicy } from '../helpers/spans.js';

const KEY_A = 'gw-a-key-0123456789abcdef';
const KEY_B = 'gw-b-key-0123456789abcdef';
const PROVIDER_KEY = 'sk-server-side-provider-key-0123456789';
const POLICY = `
tiers:
  free:
    run: { stepCount: 3 }
auth:
  tenants:
    gw-a: { gatewayKeys: ["${KEY_A}"] }
    gw-b: { gatewayKeys: ["${KEY_B}"] }
    gw-c: { gatewayKeys: ["gw-c-key-0123456789abcdef"] }
`;

let upstream: MockUpstream;
let service: Service;
let base: string;

beforeAll(async () => {
  upstream = await startMockUpstream();
  process.env.OPENAI_API_KEY = PROVIDER_KEY;
  process.env.ANTHROPIC_API_KEY = PROVIDER_KEY;
  const dataDir = tempDataDir();
  service = await startTestService({ dataDir, policyFile: writePolicy(dataDir, POLICY), policyFileExplicit: true, gatewayOpenaiUrl: upstream.url, gatewayAnthropicUrl: upstream.url });
  base = service.gatewayUrl;
});

afterAll(async () => {
  await service?.stop();
  await upstream?.close();
  delete process.env.OPENAI_API_KEY;
  delete process.env.ANTHROPIC_API_KEY;
});

const openai = (apiKey: string, runId?: string) =>
  new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, ...(runId ? { defaultHeaders: { 'x-breakwater-run-id': runId } } : {}) });
const ask = (client: OpenAI) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

describe('the gateway in front of the provider', () => {
  it('relays a call with the server key only, and records it as the run\u2019s model call with its usage', async () => {
    const before = upstream.requests.length;
    const answer = await ask(openai(KEY_A, 'calm'));
    expect(answer.choices[0]!.message.content).toBe('hi');
    expect(answer.usage).toMatchObject({ prompt_tokens: 100, completion_tokens: 20 });
    const sent = upstream.requests.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    expect(JSON.stringify(sent[0]!.headers)).not.toContain(KEY_A);
    expect(JSON.stringify(answer)).not.toContain(PROVIDER_KEY);
    const metrics = service.core.windows.runMetrics('gw-a', 'calm');
    expect(metrics).toMatchObject({ stepCount: 1, modelCallsPerMinute: 1 });
    expect(metrics!.costUsd).toBeGreaterThan(0); // priced by its dated response model's family
  });

  it('refuses a runaway run on the first call after its crossing, with no upstream call, in OpenAI\u2019s error format', async () => {
    const client = openai(KEY_A, 'loop');
    const before = upstream.requests.length;
    for (let i = 0; i < 4; i++) await ask(client); // the 4th crosses stepCount 3
    expect(upstream.requests.length - before).toBe(4);
    for (let i = 0; i < 3; i++) {
      const refused = await ask(client).then(() => undefined, (e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.PermissionDeniedError);
      const error = (refused as InstanceType<typeof OpenAI.PermissionDeniedError>).error as { type: string; breakwater: Record<string, unknown> };
      expect(error.type).toBe('breakwater_halt');
      expect(error.breakwater).toMatchObject({ metric: 'stepCount', threshold: 3, observed: 4, scope: 'RUN' });
      expect((refused as { headers: Headers }).headers.get('retry-after')).toMatch(/^\d+$/);
    }
    expect(upstream.requests.length - before).toBe(4);
    // Another run of the tenant, and the same run id under another tenant, go on.
    await expect(ask(openai(KEY_A, 'loop-2'))).resolves.toBeDefined();
    await expect(ask(openai(KEY_B, 'loop'))).resolves.toBeDefined();
  });

  it('passes a stream through unchanged and counts its usage', async () => {
    const stream = await openai(KEY_B, 'streamed').chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(STREAMED_WORDS.join(''));
    expect(usage).toMatchObject({ prompt_tokens: 30, completion_tokens: 5 });
    expect(service.core.windows.runMetrics('gw-b', 'streamed')).toMatchObject({ stepCount: 1 });
    const rows = async () => (await service.store.client.query({ query: "SELECT InputTokens, OutputTokens, ResponseModel FROM spans WHERE TenantId = 'gw-b' AND RunId = 'streamed'", format: 'JSONEachRow' })).json();
    await expect.poll(rows).toEqual([{ InputTokens: 30, OutputTokens: 5, ResponseModel: 'gpt-4o-mini-2024-07-18' }]);
  });

  it('serves the Anthropic Messages API, streamed too, and halts in Anthropic\u2019s error format', async () => {
    const client = new Anthropic({ baseURL: base, apiKey: 'gw-c-key-0123456789abcdef', maxRetries: 0, defaultHeaders: { 'x-breakwater-run-id': 'claude' } });
    const message = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
    expect(message.usage).toMatchObject({ input_tokens: 21, output_tokens: 9 });
    expect(upstream.requests.at(-1)!.headers['x-api-key']).toBe(PROVIDER_KEY);
    const stream = client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
    const final = await stream.finalMessage();
    expect(final.content).toEqual([{ type: 'text', text: STREAMED_WORDS.join(''), citations: null }].map(({ citations: _, ...rest }) => expect.objectContaining(rest)));
    expect(service.core.windows.runMetrics('gw-c', 'claude')).toMatchObject({ stepCount: 2 });

    const forced = await gql(`${service.graphqlUrl}`, 'mutation { forceOpenBreaker(tenantId: "gw-c", reason: "incident 7", durationMs: 60000) { state } }');
    expect(forced.errors).toBeUndefined();
    const before = upstream.requests.length;
    const refused = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect((refused as InstanceType<typeof Anthropic.PermissionDeniedError>).error).toMatchObject({ type: 'error', error: { type: 'permission_error', breakwater: { reason: expect.stringContaining('incident 7'), scope: 'TENANT' } } });
    expect(upstream.requests.length).toBe(before);
  });
});

describe('bad input gets the error the provider would give', () => {
  const post = (path: string, body: string, key = KEY_B, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body });

  it.each([
    ['malformed JSON', () => post('/v1/chat/completions', '{"model": "gpt-4o-mini", '), 400, /not a JSON object/],
    ['no model', () => post('/v1/chat/completions', '{"messages": []}'), 400, /model: a model name/],
    ['a body past the limit', () => post('/v1/chat/completions', JSON.stringify({ model: 'm', pad: 'x'.repeat(21 * 1024 * 1024) })), 413, /byte limit \(--max-body-bytes\)/],
    ['a wrong key', () => post('/v1/chat/completions', '{"model": "gpt-4o-mini"}', 'nope-0123456789abcdef'), 401, /unknown gateway key/],
    ['a run id with control characters', () => post('/v1/chat/completions', '{"model": "gpt-4o-mini"}', KEY_B, { 'x-breakwater-run-id': 'a\tb' }), 400, /x-breakwater-run-id/],
    ['an unknown path', () => post('/v1/fine_tuning/jobs', '{}'), 404, /no POST \/v1\/fine_tuning\/jobs here/],
  ])('%s', async (_name, request, status, message) => {
    const before = upstream.requests.length;
    const res = await request();
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { message: string; type: string } };
    expect(body.error.message).toMatch(message);
    expect(typeof body.error.type).toBe('string');
    expect(upstream.requests.length).toBe(before);
  });

  it('answers a wrong key on the Anthropic endpoint in Anthropic\u2019s format', async () => {
    const res = await fetch(`${base}/v1/messages`, { method: 'POST', headers: { 'x-api-key': 'nope-0123456789abcdef', 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });

  it('relays an upstream 429 as it came, then throttles the tenant at the gate, and never counts it as an error', async () => {
    upstream.failWith(429);
    try {
      const refused = await ask(openai(KEY_B, 'limited')).then(() => undefined, (e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
      expect((refused as { headers: Headers }).headers.get('x-breakwater-decision')).toBeNull(); // the provider's own 429
    } finally {
      upstream.failWith(undefined);
    }
    const before = upstream.requests.length;
    // The provider key is now shaped: Breakwater answers 429 with Retry-After itself, before any upstream call.
    const throttled = await ask(openai(KEY_B, 'limited')).then(() => undefined, (e: unknown) => e);
    expect(throttled).toBeInstanceOf(OpenAI.RateLimitError);
    const headers = (throttled as { headers: Headers }).headers;
    expect(headers.get('x-breakwater-decision')).toBe('THROTTLE');
    expect(Number(headers.get('retry-after-ms'))).toBeGreaterThan(0);
    expect(upstream.requests.length).toBe(before);
    // The client honours Retry-After and gets through once it has passed.
    const retrying = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY_B, maxRetries: 3, defaultHeaders: { 'x-breakwater-run-id': 'limited' } });
    await expect(ask(retrying)).resolves.toBeDefined();
    expect(service.core.windows.runMetrics('gw-b', 'limited')).toMatchObject({ errorRatio: 0 });
  });
});
