// The convention table (src/normalize/conventions.ts) through the normalizer: the run of a span
// without a parent, and providers and models as instrumentations name them.
import { describe, expect, it } from 'vitest';
import type { AnyValue } from '../../src/codecs/otlp-model.js';
import { normalizeRequest } from '../../src/normalize/normalize.js';
import { attrs, modelRequest, modelSpan } from '../helpers/otlp-model.js';

const TENANT = attrs({ 'tenant.id': 't' });

function normalized(spans: Record<string, AnyValue>[], runKeys?: readonly string[]) {
  const result = normalizeRequest(modelRequest(TENANT, spans.map((a) => modelSpan(attrs({ 'gen_ai.operation.name': 'chat', ...a })))), { requireTenant: true, ...(runKeys ? { runKeys } : {}) });
  expect(result.rejected).toBe(0);
  return result.spans;
}

const one = (a: Record<string, AnyValue>, runKeys?: readonly string[]) => normalized([a], runKeys)[0]!;

describe('runs without a parent span', () => {
  it('makes one run of a parentless loop whose traces share gen_ai.conversation.id', () => {
    const spans = normalized(Array.from({ length: 10 }, () => ({ 'gen_ai.conversation.id': 'conv-1' })));
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(10);
    expect(new Set(spans.map((s) => s.runId))).toEqual(new Set(['conv-1']));
    expect(spans[0]!.conversationId).toBe('conv-1');
  });

  it.each([
    ['session.id', 'OpenInference'],
    ['traceloop.association.properties.session_id', 'OpenLLMetry'],
    ['traceloop.association.properties.conversation_id', 'OpenLLMetry'],
    ['ai.telemetry.metadata.sessionId', 'Vercel AI SDK'],
    ['ai.telemetry.metadata.conversationId', 'Vercel AI SDK'],
  ])('reads the run from %s (%s)', (key) => {
    expect(one({ [key]: 's-1' }).runId).toBe('s-1');
  });

  it('falls back to the trace id for the spans without any run key, beside those with one', () => {
    const [conversation, bare] = normalized([{ 'gen_ai.conversation.id': 'conv-2' }, {}]);
    expect(conversation!.runId).toBe('conv-2');
    expect(bare!.runId).toBe(bare!.traceId);
    // An empty conversation id counts as absent.
    const blank = one({ 'gen_ai.conversation.id': '' });
    expect(blank.runId).toBe(blank.traceId);
  });

  it('lets agent.run.id win over a conversation id, whatever the attribute order', () => {
    // The SDK stamps the root run id on a sub-agent's spans: the conversation must not split them off.
    const [first, second, conversationOnly] = normalized([
      { 'gen_ai.conversation.id': 'conv', 'agent.run.id': 'root-run' },
      { 'agent.run.id': 'root-run', 'gen_ai.conversation.id': 'conv' },
      { 'gen_ai.conversation.id': 'conv' },
    ]);
    expect([first!.runId, second!.runId, conversationOnly!.runId]).toEqual(['root-run', 'root-run', 'conv']);
  });

  it('prefers gen_ai.conversation.id to a session id, whatever the attribute order', () => {
    expect(one({ 'session.id': 'session', 'gen_ai.conversation.id': 'conv' }).runId).toBe('conv');
  });

  it('reads the policy run keys after agent.run.id and before the conversation ids', () => {
    const keys = ['app.thread_id', 'app.job_id'];
    expect(one({ 'gen_ai.conversation.id': 'conv', 'app.job_id': 'job' }, keys).runId).toBe('job');
    expect(one({ 'app.job_id': 'job', 'app.thread_id': 'thread' }, keys).runId).toBe('thread');
    expect(one({ 'app.thread_id': 'thread', 'agent.run.id': 'run' }, keys).runId).toBe('run');
    // Without the policy the key is just an attribute.
    const plain = one({ 'app.thread_id': 'thread' });
    expect(plain.runId).toBe(plain.traceId);
  });

  it('passes over a conversation id too long to be a run id instead of refusing the span', () => {
    expect(one({ 'gen_ai.conversation.id': 'c'.repeat(300), 'session.id': 'session-1' }).runId).toBe('session-1');
    const span = one({ 'gen_ai.conversation.id': 'c'.repeat(300) });
    expect(span.runId).toBe(span.traceId);
  });
});

describe('providers and models as instrumentations name them', () => {
  it.each([
    [{ 'gen_ai.system': 'openai.chat' }, 'openai'],
    [{ 'ai.model.provider': 'openai.responses' }, 'openai'],
    [{ 'ai.model.provider': 'anthropic.messages' }, 'anthropic'],
    [{ 'gen_ai.system': 'Anthropic' }, 'anthropic'],
    [{ 'ai.model.provider': 'OpenAI' }, 'openai'],
  ])('reads %o as provider %s', (a, provider) => {
    expect(one(a).provider).toBe(provider);
  });

  it('takes gen_ai.provider.name over the older keys, whatever the attribute order', () => {
    expect(one({ 'gen_ai.provider.name': 'azure.ai.openai', 'gen_ai.system': 'azure' }).provider).toBe('azure.ai.openai');
    expect(one({ 'llm.provider': 'azure', 'llm.system': 'openai' }).provider).toBe('azure');
    expect(one({ 'gen_ai.system': 'openai', 'ai.model.provider': 'openai.responses' }).provider).toBe('openai');
  });

  it("reads the Vercel AI SDK's model ids", () => {
    const span = one({ 'ai.model.id': 'gpt-4o-mini', 'ai.response.model': 'gpt-4o-mini-2024-07-18' });
    expect([span.requestModel, span.responseModel]).toEqual(['gpt-4o-mini', 'gpt-4o-mini-2024-07-18']);
    expect(one({ 'ai.model.id': 'x', 'gen_ai.request.model': 'gpt-4o' }).requestModel).toBe('gpt-4o');
  });
});
