import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { freshPayload, payloadTemplate, type Encoding } from '../../bench/payloads.js';
import { decodeTraceRequestJson } from '../../src/codecs/decode-json.js';
import { decodeTraceRequestProtobuf } from '../../src/codecs/decode-protobuf.js';
import type { OtlpTraceRequest } from '../../src/codecs/otlp-model.js';

// The bench sends each payload template many times; each send must be new spans (a repeated body
// is a retried delivery, which the product stores once), and otherwise the same request.

function decode(body: Buffer, encoding: Encoding): OtlpTraceRequest {
  return encoding === 'protobuf' ? decodeTraceRequestProtobuf(body) : decodeTraceRequestJson(body.toString('utf8'));
}

const spansOf = (request: OtlpTraceRequest) => request.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));

describe.each([
  ['protobuf', false],
  ['json', false],
  ['protobuf', true],
  ['json', true],
] as const)('bench payloads (%s, gzip %s)', (encoding, gzip) => {
  it('give every send span ids of its own and change nothing else', () => {
    const template = payloadTemplate({ encoding, gzip, spansPerRequest: 50, tenants: 3 }, 1);
    const original = spansOf(decode(template.raw, encoding));
    const seen = new Set(original.map((s) => s.spanId));
    for (const n of [0, 1, 2, 63, 64, 1_000_000]) {
      const body = freshPayload(template, n);
      const spans = spansOf(decode(gzip ? gunzipSync(body) : body, encoding));
      expect(spans).toHaveLength(50);
      for (const [i, span] of spans.entries()) {
        expect(seen.has(span.spanId), `span ${i} of send ${n} reuses an id`).toBe(false);
        seen.add(span.spanId);
        expect({ ...span, spanId: '' }).toEqual({ ...original[i]!, spanId: '' });
      }
    }
  });
});

describe('bench payloads with fresh runs', () => {
  it('start ten new runs at every send', () => {
    const template = payloadTemplate({ encoding: 'protobuf', gzip: false, spansPerRequest: 40, tenants: 3, freshRuns: true }, 2);
    const runsOf = (n: number) =>
      new Set(spansOf(decode(freshPayload(template, n), 'protobuf')).map((s) => s.attributes.find((a) => a.key === 'agent.run.id')!.value));
    const first = runsOf(0);
    const second = runsOf(1);
    expect(first.size).toBe(10);
    expect([...first].every((r) => /^run-2-\d-00000001$/.test(String(r)))).toBe(true);
    expect([...second].filter((r) => first.has(r))).toEqual([]);
  });
});
