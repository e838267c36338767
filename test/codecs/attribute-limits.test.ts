// The attribute count limit, applied while decoding: past it attributes are dropped and counted,
// except the ones Breakwater reads, and a dropped attribute's value is never decoded.
import { describe, expect, it } from 'vitest';
import { decodeTraceRequestJson } from '../../src/codecs/decode-json.js';
import { decodeTraceRequestProtobuf } from '../../src/codecs/decode-protobuf.js';
import { referenceEncode } from '../../src/codecs/otlp-proto-schema.js';
import type { KeyValue, OtlpTraceRequest } from '../../src/codecs/otlp-model.js';
import { attrs, filler, jsonBody, modelRequest, modelSpan } from '../helpers/otlp-model.js';

const LIMITS = { perList: 128 };

const decoders = {
  protobuf: (request: OtlpTraceRequest) => decodeTraceRequestProtobuf(referenceEncode(request), LIMITS),
  json: (request: OtlpTraceRequest) => decodeTraceRequestJson(jsonBody(request), LIMITS),
};

const value = (list: KeyValue[], key: string) => list.filter((kv) => kv.key === key).map((kv) => kv.value);

describe.each(Object.entries(decoders))('the %s decoder with an attribute limit', (_name, decode) => {
  it('keeps the first 128 of a span, a resource and an event, and counts the rest as dropped', () => {
    const span = modelSpan(filler(5_000), {
      droppedAttributesCount: 7,
      events: [{ timeUnixNano: 1n, name: 'e', attributes: filler(300, 'event'), droppedAttributesCount: 0 }],
    });
    const decoded = decode(modelRequest(filler(1_000, 'resource'), [span]));
    const rs = decoded.resourceSpans[0]!;
    const out = rs.scopeSpans[0]!.spans[0]!;
    expect(out.attributes).toHaveLength(128);
    expect(out.attributes[127]!.key).toBe('llm.input_messages.127.message.content');
    expect(out.droppedAttributesCount).toBe(7 + 5_000 - 128);
    expect(rs.resource.attributes).toHaveLength(128);
    expect(rs.resource.droppedAttributesCount).toBe(1_000 - 128);
    expect(out.events[0]!.attributes).toHaveLength(128);
    expect(out.events[0]!.droppedAttributesCount).toBe(300 - 128);
    expect(decoded.droppedAttributes).toBe(5_000 - 128 + 1_000 - 128 + 300 - 128);
  });

  it('keeps the attributes Breakwater reads past the limit, once each, with their last value', () => {
    // An OpenInference chat span: the prompt's messages first, the model and usage last.
    const read = attrs({
      'openinference.span.kind': 'LLM',
      'llm.model_name': 'gpt-4o',
      'llm.provider': 'openai',
      'llm.token_count.prompt': 1_200n,
      'llm.token_count.completion': 80n,
      'agent.run.id': 'run-1',
      'http.response.header.x-ratelimit-remaining-tokens': '500',
    });
    const repeated = Array.from({ length: 1_000 }, (_, i) => ({ key: 'tenant.id', value: `t-${i}` }));
    const decoded = decode(modelRequest(attrs({ 'tenant.id': 'acme' }), [modelSpan([...filler(2_000), ...read, ...repeated])]));
    const out = decoded.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(out.attributes).toHaveLength(128 + read.length + 1);
    for (const { key, value: v } of read) expect(value(out.attributes, key)).toEqual([v]);
    expect(value(out.attributes, 'tenant.id')).toEqual(['t-999']);
    expect(out.droppedAttributesCount).toBe(2_000 - 128 + 999);
  });

  it('keeps a read key that came within the limit in its place, with a later value', () => {
    const list = [{ key: 'gen_ai.request.model', value: 'first' }, ...filler(500), { key: 'gen_ai.request.model', value: 'last' }];
    const out = decode(modelRequest([], [modelSpan(list)])).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(out.attributes).toHaveLength(128);
    expect(out.attributes[0]).toEqual({ key: 'gen_ai.request.model', value: 'last' });
  });
});

describe('the protobuf decoder past the limit', () => {
  it('does not decode a dropped attribute: its value may even be invalid UTF-8', () => {
    const marker = 'MARKER-'.repeat(4);
    const body = referenceEncode(modelRequest([], [modelSpan([...filler(128), ...filler(10_000, 'junk', marker), { key: 'x'.repeat(200), value: marker }])]));
    // Every marker value (and nothing else) turned into bytes that are not UTF-8, length kept.
    const bytes = Buffer.from(body);
    const needle = Buffer.from(marker);
    let replaced = 0;
    for (let at = bytes.indexOf(needle); at !== -1; at = bytes.indexOf(needle, at + needle.length), replaced++) bytes.fill(0xff, at, at + needle.length);
    expect(replaced).toBe(10_001);
    expect(() => decodeTraceRequestProtobuf(bytes)).toThrow(/not valid UTF-8/);
    const out = decodeTraceRequestProtobuf(bytes, LIMITS).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(out.attributes).toHaveLength(128);
    expect(out.droppedAttributesCount).toBe(10_001);
  });

  it('decodes exactly as before within the limit', () => {
    const request = modelRequest(attrs({ 'tenant.id': 'a' }), [modelSpan(filler(128))]);
    const body = referenceEncode(request);
    expect(decodeTraceRequestProtobuf(body, LIMITS)).toEqual({ ...decodeTraceRequestProtobuf(body), droppedAttributes: 0 });
  });
});
