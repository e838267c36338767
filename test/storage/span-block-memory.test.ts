// What the Native block encoder costs per request and keeps between blocks: a resource's
// attributes are encoded once and their bytes copied for each further row, and the buffers an
// outlier block grew are given back instead of pinned for every block after it.
import { describe, expect, it } from 'vitest';
import type { AgentSpan } from '../../src/contracts/agent-span.js';
import type { KeyValue } from '../../src/codecs/otlp-model.js';
import { normalizeRequest } from '../../src/normalize/normalize.js';
import { SpanBlockEncoder } from '../../src/storage/span-block.js';
import { blankAgentSpan } from '../helpers/agent-span.js';
import { attrs, filler, modelRequest, modelSpan } from '../helpers/otlp-model.js';

const MB = 1024 * 1024;

const span = (i: number, overrides: Partial<AgentSpan> = {}): AgentSpan =>
  blankAgentSpan({ tenantId: 't', traceId: 'a'.repeat(32), spanId: i.toString(16).padStart(16, '0'), runId: `r${i % 7}`, ...overrides });

/** Attributes whose keys count how often the encoder reads them. */
function countedAttributes(count: number): { list: KeyValue[]; reads: () => number } {
  let reads = 0;
  const list = Array.from({ length: count }, (_, i) => ({
    get key() {
      reads++;
      return `resource.attribute.${i}`;
    },
    value: `value ${i}`,
  }));
  return { list, reads: () => reads };
}

describe('resource attributes', () => {
  it('are shared by every span of their resource after normalization, not copied', () => {
    const request = modelRequest([...attrs({ 'tenant.id': 't' }), ...filler(200, 'r')], Array.from({ length: 500 }, () => modelSpan([])));
    const { spans } = normalizeRequest(request, { requireTenant: true });
    expect(spans).toHaveLength(500);
    expect(new Set(spans.map((s) => s.resourceAttributes)).size).toBe(1);
  });

  it('are encoded once per request and copied for each further span', () => {
    const encodeReads = (spans: number) => {
      const { list, reads } = countedAttributes(100);
      const encoder = new SpanBlockEncoder();
      encoder.add(Array.from({ length: spans }, (_, i) => span(i, { resourceAttributes: list })), new Float64Array(spans));
      return { reads: reads(), bytes: encoder.finish().length };
    };
    const one = encodeReads(1);
    const many = encodeReads(2_000);
    expect(one.reads).toBeGreaterThanOrEqual(100);
    expect(many.reads).toBe(one.reads);
    // The stored rows still hold the attributes each (the table's format): 2,000 copies of the bytes.
    expect(many.bytes).toBeGreaterThan(2_000 * 100 * 'value 00'.length);
  });
});

describe("the encoder's buffers", () => {
  const normal = () => Array.from({ length: 50 }, (_, i) => span(i, { spanAttributes: attrs({ 'gen_ai.request.model': 'gpt-4o', n: String(i) }) }));

  /** The span attribute values column's buffer (the one a long value grows). */
  const valuesCapacity = (encoder: SpanBlockEncoder) => encoder.attributes.values.data.buf.length;

  /** Encodes into the reused output, as the writer does (the block is valid until releaseBlock). */
  function write(encoder: SpanBlockEncoder, spans: AgentSpan[]): Buffer {
    encoder.add(spans, new Float64Array(spans.length));
    return Buffer.from(encoder.finishReused());
  }

  function flush(encoder: SpanBlockEncoder, spans: AgentSpan[]): Buffer {
    const block = write(encoder, spans);
    encoder.releaseBlock();
    return block;
  }

  it('give an outlier block (one 70 MB attribute) back as soon as it is written', () => {
    const encoder = new SpanBlockEncoder();
    const initialValues = valuesCapacity(encoder);
    const huge = write(encoder, [span(1, { spanAttributes: attrs({ prompt: 'x'.repeat(70 * MB) }) })]);
    expect(huge.length).toBeGreaterThan(70 * MB);
    expect(valuesCapacity(encoder)).toBe(initialValues);
    encoder.releaseBlock();
    const fresh = new SpanBlockEncoder();
    flush(fresh, normal());
    const baseline = fresh.retainedBytes;
    expect(baseline).toBeLessThan(16 * MB);
    expect(encoder.retainedBytes).toBeLessThanOrEqual(baseline);
    // and the blocks after it are the ones a fresh encoder writes
    expect(flush(encoder, normal()).equals(flush(new SpanBlockEncoder(), normal()))).toBe(true);
    expect(encoder.retainedBytes).toBeLessThanOrEqual(baseline);
  });

  it('shrink back after a block of many rows once normal blocks follow', () => {
    const encoder = new SpanBlockEncoder();
    const resource = filler(4, 'r');
    const rows = Array.from({ length: 40_000 }, (_, i) => span(i, { spanAttributes: attrs({ a: `v${i}`.repeat(20) }), resourceAttributes: resource }));
    write(encoder, rows);
    const grown = valuesCapacity(encoder);
    expect(grown).toBeGreaterThan(4 * MB);
    write(encoder, normal());
    expect(valuesCapacity(encoder)).toBeLessThan(grown / 4);
    encoder.releaseBlock();
    const fresh = new SpanBlockEncoder();
    flush(fresh, normal());
    expect(encoder.retainedBytes).toBeLessThanOrEqual(2 * fresh.retainedBytes);
    expect(flush(encoder, normal()).equals(flush(fresh, normal()))).toBe(true);
  });
});
