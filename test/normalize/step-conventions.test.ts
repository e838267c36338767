// Steps from any instrumentation (issue 20): the operation tables of src/normalize/conventions.ts and
// the tool calls a model response asked for (src/normalize/tool-calls.ts), through the normalizer.
// Attribute sets are those the real instrumentations emit (test/conformance records them live).
import { describe, expect, it } from 'vitest';
import type { AnyValue, OtlpSpan } from '../../src/codecs/otlp-model.js';
import { normalizeRequest } from '../../src/normalize/normalize.js';
import { ToolSpanTraces } from '../../src/normalize/tool-calls.js';
import { spanFacts, spanKind } from '../../src/windows/span-facts.js';
import { attrs, modelRequest, modelSpan } from '../helpers/otlp-model.js';

const TENANT = attrs({ 'tenant.id': 't' });

function normalize(spans: OtlpSpan[], toolSpanTraces?: ToolSpanTraces) {
  const result = normalizeRequest(modelRequest(TENANT, spans), { requireTenant: true, ...(toolSpanTraces ? { toolSpanTraces } : {}) });
  expect(result.rejected).toBe(0);
  return result.spans;
}

const span = (a: Record<string, AnyValue>, overrides: Partial<OtlpSpan> = {}) => modelSpan(attrs(a), overrides);
const one = (a: Record<string, AnyValue>) => normalize([span(a)])[0]!;
const TRACE = 'c'.repeat(32);

describe('model and tool calls recognised from every instrumentation', () => {
  it.each([
    ['Vercel ai.generateText.doGenerate', { 'ai.operationId': 'ai.generateText.doGenerate', 'gen_ai.system': 'openai.chat', 'ai.model.id': 'gpt-4o-mini' }, 'chat'],
    ['Vercel ai.streamText.doStream', { 'ai.operationId': 'ai.streamText.doStream' }, 'chat'],
    ['Vercel ai.embed.doEmbed', { 'ai.operationId': 'ai.embed.doEmbed' }, 'embeddings'],
    ['OpenLLMetry llm.request.type', { 'llm.request.type': 'chat', 'gen_ai.system': 'OpenAI' }, 'chat'],
    ['OpenLLMetry completion', { 'llm.request.type': 'completion' }, 'text_completion'],
    ['OpenInference LLM', { 'openinference.span.kind': 'LLM' }, 'chat'],
    ['OpenInference lower-case llm', { 'openinference.span.kind': 'llm' }, 'chat'],
  ])('%s is a model call', (_name, attributes, operation) => {
    const s = one(attributes);
    expect(s.operation).toBe(operation);
    expect(spanKind(s.operation)).toBe('model');
  });

  it('counts the Vercel ai.generateText wrapper as an agent span, not a second model call', () => {
    const outer = one({ 'ai.operationId': 'ai.generateText', 'ai.model.provider': 'openai.chat', 'ai.usage.inputTokens': 360 });
    expect(spanKind(outer.operation)).toBe('agent');
    expect(one({ 'ai.operationId': 'ai.streamText' }).operation).toBe('invoke_agent');
    // Vercel's outer embed wraps its doEmbed: no step at all.
    expect(spanKind(one({ 'ai.operationId': 'ai.embed' }).operation)).toBe('other');
  });

  it.each([
    ['GenAI semconv', { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup_weather' }],
    ['OpenInference TOOL', { 'openinference.span.kind': 'TOOL', 'tool.name': 'lookup_weather' }],
    ['OpenLLMetry tool span', { 'traceloop.span.kind': 'tool', 'traceloop.entity.name': 'lookup_weather' }],
    ['Vercel ai.toolCall', { 'ai.operationId': 'ai.toolCall', 'ai.toolCall.name': 'lookup_weather', 'ai.toolCall.id': 'call_1' }],
  ])('%s is a tool call with its name', (_name, attributes) => {
    const s = one(attributes);
    expect(s.operation).toBe('execute_tool');
    expect(s.toolName).toBe('lookup_weather');
    expect(s.toolCalls).toBe(1);
  });

  it("does not take OpenLLMetry's entity name of a workflow for a tool", () => {
    const s = one({ 'traceloop.span.kind': 'workflow', 'traceloop.entity.name': 'plan_trip' });
    expect(s.operation).toBe('');
    expect(s.toolName).toBe('');
  });

  it('lets gen_ai.operation.name win over the other spellings, whatever the attribute order', () => {
    expect(one({ 'openinference.span.kind': 'TOOL', 'gen_ai.operation.name': 'chat' }).operation).toBe('chat');
    expect(one({ 'gen_ai.operation.name': 'chat', 'ai.operationId': 'ai.toolCall' }).operation).toBe('chat');
  });
});

describe('tool calls a model response asked for', () => {
  it('counts a tool_calls finish reason as one call when the response names no tool (official OTel instrumentation)', () => {
    const s = one({ 'gen_ai.operation.name': 'chat', 'gen_ai.response.finish_reasons': ['tool_calls'] });
    expect(s.toolCalls).toBe(1);
    expect(s.toolName).toBe('');
    expect(one({ 'gen_ai.operation.name': 'chat', 'gen_ai.response.finish_reasons': ['stop'] }).toolCalls).toBe(0);
  });

  it.each([['tool-calls'], ['tool_call'], ['TOOL_USE'], ['function_call']])('reads the finish reason %s', (reason) => {
    expect(one({ 'gen_ai.operation.name': 'chat', 'gen_ai.response.finish_reasons': [reason] }).toolCalls).toBe(1);
  });

  it('names the calls from gen_ai.output.messages tool_call parts (OpenLLMetry), counted once beside the finish reason', () => {
    const output = JSON.stringify([
      { role: 'assistant', finish_reason: 'tool_call', parts: [{ type: 'tool_call', id: 'call_1', name: 'lookup_weather', arguments: {} }, { type: 'tool_call', id: 'call_2', name: 'search_docs' }] },
    ]);
    const s = one({ 'gen_ai.operation.name': 'chat', 'gen_ai.response.finish_reasons': ['tool_call'], 'gen_ai.output.messages': output });
    expect(s.toolCalls).toBe(2);
    expect(s.toolName).toBe('lookup_weather,search_docs');
  });

  it("names the calls from OpenInference's flattened output messages, not from the input messages", () => {
    const s = one({
      'openinference.span.kind': 'LLM',
      'llm.input_messages.1.message.tool_calls.0.tool_call.function.name': 'earlier_tool',
      'llm.output_messages.0.message.tool_calls.0.tool_call.id': 'call_1',
      'llm.output_messages.0.message.tool_calls.0.tool_call.function.name': 'lookup_weather',
      'llm.output_messages.0.message.tool_calls.1.tool_call.function.name': 'search_docs',
    });
    expect(s.toolCalls).toBe(2);
    expect(s.toolName).toBe('lookup_weather,search_docs');
  });

  it("names the calls from Vercel's ai.response.toolCalls", () => {
    const calls = JSON.stringify([{ toolCallId: 'call_1', toolName: 'lookup_weather', input: {} }]);
    const s = one({ 'ai.operationId': 'ai.generateText.doGenerate', 'gen_ai.response.finish_reasons': ['tool-calls'], 'ai.response.toolCalls': calls });
    expect(s.toolCalls).toBe(1);
    expect(s.toolName).toBe('lookup_weather');
  });

  it('ignores requested calls on spans that are not model calls (the Vercel wrapper repeats them all)', () => {
    const calls = JSON.stringify([{ toolName: 'lookup_weather' }, { toolName: 'search_docs' }]);
    expect(one({ 'ai.operationId': 'ai.generateText', 'ai.response.toolCalls': calls }).toolCalls).toBe(0);
  });

  it('leaves them out when a tool span exists in the same trace, in the same request', () => {
    const [model, tool, other] = normalize([
      span({ 'ai.operationId': 'ai.generateText.doGenerate', 'gen_ai.response.finish_reasons': ['tool-calls'] }, { traceId: TRACE }),
      span({ 'ai.operationId': 'ai.toolCall', 'ai.toolCall.name': 'lookup_weather' }, { traceId: TRACE }),
      span({ 'gen_ai.operation.name': 'chat', 'gen_ai.response.finish_reasons': ['tool_calls'] }),
    ]);
    expect(model!.toolCalls).toBe(0);
    expect(tool!.toolCalls).toBe(1);
    expect(other!.toolCalls).toBe(1);
  });

  it('leaves them out when a tool span of that trace came in an earlier request', () => {
    const traces = new ToolSpanTraces(16);
    normalize([span({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup_weather' }, { traceId: TRACE })], traces);
    const [model] = normalize([span({ 'gen_ai.operation.name': 'chat', 'gen_ai.response.finish_reasons': ['tool_calls'] }, { traceId: TRACE })], traces);
    expect(model!.toolCalls).toBe(0);
  });

  it('counts them as steps and tool calls in the windows', () => {
    const [model] = normalize([span({ 'gen_ai.operation.name': 'chat', 'gen_ai.response.finish_reasons': ['tool_calls', 'tool_calls'] })]);
    const facts = spanFacts(model!, Date.now(), {});
    expect(facts.toolCalls).toBe(2);
    expect(facts.steps).toBe(3);
    expect(facts.isStep).toBe(true);
  });
});

describe('the memory of traces with tool spans', () => {
  it('holds at most its capacity, forgetting the least recently seen', () => {
    const traces = new ToolSpanTraces(100);
    for (let i = 0; i < 1000; i++) traces.add(`trace-${i}`);
    expect(traces.size).toBe(100);
    expect(traces.has('trace-999')).toBe(true);
    expect(traces.has('trace-899')).toBe(false);
  });
});
