// What the attribute limit keeps is what the product reads: a span capped while decoding
// normalizes, and feeds the degradation path, exactly as the uncapped span does.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { READ_ATTRIBUTES } from '../../src/codecs/attribute-limits.js';
import { decodeTraceRequestProtobuf } from '../../src/codecs/decode-protobuf.js';
import { referenceEncode } from '../../src/codecs/otlp-proto-schema.js';
import { errorTexts, PREFLIGHT_RESERVED_ATTRIBUTE, PREFLIGHT_TOKENS_ATTRIBUTE, PROVIDER_KEY_ATTRIBUTES, readSpanExtras, resetHeaders } from '../../src/degradation/span-signals.js';
import { CONVENTION_KEYS } from '../../src/normalize/conventions.js';
import { normalizeRequest } from '../../src/normalize/normalize.js';
import { attrs, filler, modelRequest, modelSpan } from '../helpers/otlp-model.js';

/** Attribute names as the normalizer, the call classifier and span-signals spell them in their source. */
function keysReadInSource(): string[] {
  const keys = new Set<string>();
  for (const file of ['src/normalize/normalize.ts', 'src/normalize/call-outcome.ts', 'src/degradation/span-signals.ts']) {
    const source = readFileSync(file, 'utf8');
    // the classifier's switches are over outcome kinds, not attribute names
    if (!file.endsWith('call-outcome.ts')) for (const [, key] of source.matchAll(/case '([^']+)':/g)) keys.add(key!);
    for (const [, key] of source.matchAll(/key === '([^']+)'/g)) keys.add(key!);
    const errorKeys = /const ERROR_TEXT_KEYS[^=]*= new Set\(\[([^\]]*)\]\)/.exec(source)?.[1];
    for (const [, key] of (errorKeys ?? '').matchAll(/'([^']+)'/g)) keys.add(key!);
  }
  return [...keys];
}

describe('the attributes kept past the limit', () => {
  it('include every attribute name the normalizer and the degradation path read, bare and as response headers', () => {
    const read = [...keysReadInSource(), ...CONVENTION_KEYS, PREFLIGHT_TOKENS_ATTRIBUTE, PREFLIGHT_RESERVED_ATTRIBUTE, ...PROVIDER_KEY_ATTRIBUTES, 'breakwater.task'];
    expect(read.length).toBeGreaterThan(40);
    const missing = read.filter((key) => !READ_ATTRIBUTES.has(key));
    const headers = read.filter((key) => key.startsWith('x-ratelimit') || key.startsWith('anthropic-ratelimit') || key.startsWith('retry-after'));
    expect(missing).toEqual([]);
    expect(headers.filter((key) => !READ_ATTRIBUTES.has(`http.response.header.${key}`))).toEqual([]);
    // Python's HTTP instrumentations write header names with `_` for `-`.
    expect(headers.filter((key) => !READ_ATTRIBUTES.has(`http.response.header.${key.replaceAll('-', '_')}`))).toEqual([]);
  });

  it("keep OpenInference's token counts, system and provider after hundreds of flattened messages", () => {
    const read = attrs({
      'openinference.span.kind': 'LLM',
      'llm.system': 'openai',
      'llm.provider': 'openai',
      'llm.model_name': 'gpt-4o-mini-2024-07-18',
      'llm.token_count.prompt': 900n,
      'llm.token_count.completion': 40n,
      'session.id': 'conv-9',
      'tenant.id': 'acme',
    });
    const messages = Array.from({ length: 150 }, (_, i) => [
      { key: `llm.input_messages.${i}.message.role`, value: 'user' },
      { key: `llm.input_messages.${i}.message.content`, value: 'hello' },
    ]).flat();
    const body = referenceEncode(modelRequest(attrs({ 'service.name': 'agent' }), [modelSpan([...messages, ...read])]));
    const [capped] = normalizeRequest(decodeTraceRequestProtobuf(body, { perList: 128 }), { requireTenant: true }).spans;
    expect(capped!.droppedAttributesCount).toBe(300 - 128);
    expect(capped).toMatchObject({ tenantId: 'acme', provider: 'openai', requestModel: 'gpt-4o-mini-2024-07-18', inputTokens: 900, outputTokens: 40, runId: 'conv-9' });
  });

  it('leave a chat span with hundreds of prompt messages normalized, and read for degradation, as without the limit', () => {
    const read = attrs({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.response.model': 'gpt-4o-2024',
      'gen_ai.usage.input_tokens': 1_500n,
      'gen_ai.usage.output_tokens': 90n,
      'gen_ai.agent.name': 'planner',
      'gen_ai.conversation.id': 'c-1',
      'agent.run.id': 'run-7',
      'agent.depth': 2n,
      'tenant.id': 'acme',
      'error.type': 'rate_limited',
      'error.message': 'Rate limit reached for gpt-4o',
      'http.response.status_code': 429n,
      'http.response.header.x-ratelimit-remaining-tokens': '0',
      'http.response.header.x-ratelimit-reset-tokens': '6m0s',
      'gen_ai.provider.key': 'openai-eu',
      'breakwater.task': 'summarize',
      'breakwater.preflight.tokens': 1_400n,
    });
    const request = modelRequest(attrs({ 'service.name': 'agent' }), [modelSpan([...filler(600), ...read])]);
    const body = referenceEncode(request);
    const [whole] = normalizeRequest(decodeTraceRequestProtobuf(body), { requireTenant: true }).spans;
    const [capped] = normalizeRequest(decodeTraceRequestProtobuf(body, { perList: 128 }), { requireTenant: true }).spans;
    expect(capped!.spanAttributes.length).toBe(128 + read.length);
    expect(capped!.droppedAttributesCount).toBe(600 - 128);
    const columns = ({ spanAttributes: _a, droppedAttributesCount: _d, ...rest }: typeof whole & object) => rest;
    expect(columns(capped!)).toEqual(columns(whole!));
    expect(capped!.requestModel).toBe('gpt-4o');
    expect(capped!.inputTokens).toBe(1_500);
    expect(readSpanExtras(capped!, 'breakwater.task')).toEqual(readSpanExtras(whole!, 'breakwater.task'));
    expect(readSpanExtras(capped!, 'breakwater.task').task).toBe('summarize');
    expect(resetHeaders(capped!, 0)).toEqual(resetHeaders(whole!, 0));
    expect(errorTexts(capped!)).toEqual(errorTexts(whole!));
  });
});
