import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTraceRequestJson } from '../../src/codecs/decode-json.js';
import { decodeTraceRequestProtobuf } from '../../src/codecs/decode-protobuf.js';
import { OtlpDecodeError } from '../../src/codecs/otlp-model.js';
import { recordingTracer } from '../helpers/otel.js';

function realPayloads() {
  const { tracer, finished } = recordingTracer({ 'tenant.id': 'fuzz', 'service.name': 'svc' });
  const parent = tracer.startSpan('parent', { attributes: { s: 'x', i: 42, d: 0.5, b: true, arr: ['a', 'b'], nums: [1, 2.5], bools: [false] } });
  parent.addEvent('e', { k: 'v' });
  parent.end();
  tracer.startSpan('child', { links: [{ context: parent.spanContext(), attributes: { why: 'because' } }] }).end();
  const spans = finished();
  return {
    json: new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans)!),
    protobuf: ProtobufTraceSerializer.serializeRequest(spans)!,
  };
}

function decodesOrRejectsCleanly(text: string): void {
  try {
    decodeTraceRequestJson(text);
  } catch (err) {
    expect(err).toBeInstanceOf(OtlpDecodeError);
  }
}

describe('the OTLP/JSON decoder', () => {
  const { json, protobuf } = realPayloads();

  it('decodes the same spans to the same model as the protobuf decoder', () => {
    // The JSON serializer writes ints that fit as numbers and the protobuf one as varints: both decode to bigint.
    expect(decodeTraceRequestJson(json)).toEqual(decodeTraceRequestProtobuf(protobuf));
  });

  it('never throws anything but OtlpDecodeError on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => decodesOrRejectsCleanly(JSON.stringify(value))),
      { numRuns: 500 },
    );
  });

  it('never throws anything but OtlpDecodeError on arbitrary strings and on mutated real payloads', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), decodesOrRejectsCleanly), { numRuns: 300 });
    fc.assert(
      fc.property(fc.nat(json.length - 1), fc.string({ minLength: 1, maxLength: 3 }), (at, insert) => decodesOrRejectsCleanly(json.slice(0, at) + insert + json.slice(at + 1))),
      { numRuns: 500 },
    );
  });

  it('handles structurally valid requests with wrong types in every field without crashing', () => {
    const body = JSON.parse(json) as { resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[] };
    const span = body.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    for (const key of Object.keys(span)) {
      for (const wrong of [null, 1.5, -1, 'str', [], {}, true, '9'.repeat(30)]) {
        decodesOrRejectsCleanly(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ ...span, [key]: wrong }] }] }] }));
      }
    }
  });

  it('rejects deep nesting quickly and without a stack overflow', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(() => decodeTraceRequestJson(`{"resourceSpans":${deep}}`)).toThrow(OtlpDecodeError);
    let value = '{"stringValue":"x"}';
    for (let i = 0; i < 5000; i++) value = `{"kvlistValue":{"values":[{"key":"k","value":${value}}]}}`;
    expect(() => decodeTraceRequestJson(`{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":${value}}]}}]}`)).toThrow(/nested deeper/);
  });

  it('handles a million tiny attributes in bounded time', () => {
    const attrs = Array.from({ length: 1_000_000 }, (_, i) => `{"key":"k${i}","value":{"intValue":"${i}"}}`).join(',');
    const started = performance.now();
    const decoded = decodeTraceRequestJson(`{"resourceSpans":[{"resource":{"attributes":[${attrs}]},"scopeSpans":[]}]}`);
    expect(decoded.resourceSpans[0]!.resource.attributes).toHaveLength(1_000_000);
    // Not a timing assertion on speed: a generous bound that only a quadratic blow-up would cross.
    expect(performance.now() - started).toBeLessThan(30_000);
  });
});
