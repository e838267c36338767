import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  type AttributeValue,
  type Attributes,
  type HrTime,
} from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { decodeTraceRequestProtobuf, peekResources } from '../../src/codecs/decode-protobuf.js';
import { resourceTenant } from '../../src/normalize/normalize.js';
import {
  ExportTraceServiceResponseType,
  referenceDecode,
  referenceEncode,
} from '../../src/codecs/otlp-proto-schema.js';
import {
  MAX_ANY_VALUE_DEPTH,
  OtlpDecodeError,
  type AnyValue,
  type KeyValue,
  type OtlpSpan,
  type OtlpTraceRequest,
} from '../../src/codecs/otlp-model.js';
import { exportResponse } from '../../src/codecs/otlp-responses.js';

// ---------------------------------------------------------------------------------------------
// Real payloads from the OpenTelemetry SDK.

const EVERY_TYPE: Attributes = {
  'str': 'hello',
  'str.empty': '',
  'str.unicode': 'żółć ✓ 🚀 \uFEFF',
  'int': 42,
  'int.negative': -7,
  'int.big': 2 ** 53 + 2, // an integer past MAX_SAFE_INTEGER still goes out as int_value
  'double': 3.25,
  'double.negative': -0.5,
  'bool.true': true,
  'bool.false': false,
  'arr.str': ['a', 'b', 'ä'],
  'arr.int': [1, -2, 3000000000],
  'arr.double': [1.5, -2.25],
  'arr.bool': [true, false],
  'arr.with.null': ['x', null, 'y'],
  'arr.empty': [],
};

const START: HrTime = [1_700_000_000, 123_456_789];
const END: HrTime = [1_700_000_001, 987_654_321];

function hrTimeToNanos([seconds, nanos]: HrTime): bigint {
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
}

/** Finished spans from a real provider: every span kind, event, link and status shape. */
function recordSpans(): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'checkout', 'host.cores': 8, 'deployment.canary': true }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('breakwater-test', '1.2.3');
  const otherScope = provider.getTracer('other-scope', undefined, { schemaUrl: 'https://opentelemetry.io/schemas/1.24.0' });

  const root = tracer.startSpan('root', { kind: SpanKind.SERVER, attributes: EVERY_TYPE, startTime: START });
  root.addEvent('cache.miss', { 'cache.key': 'user:1', 'cache.size': 12, 'cache.ratio': 0.75 }, [1_700_000_000, 500]);
  root.addEvent('bare', [1_700_000_000, 999_999_999]);
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream timed out' });

  const rootCtx = trace.setSpan(ROOT_CONTEXT, root);
  const kinds = [SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER];
  for (const kind of kinds) {
    const child = tracer.startSpan(`child.${SpanKind[kind]}`, {
      kind,
      startTime: START,
      links: [{ context: root.spanContext(), attributes: { 'link.reason': 'retry', 'link.attempt': 2 } }],
    }, rootCtx);
    child.setStatus({ code: SpanStatusCode.OK });
    child.end(END);
  }

  const remoteParent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('vendor=opaque,other=1'),
  });
  otherScope.startSpan('from-remote', { startTime: START }, remoteParent).end(END);

  root.end(END);
  return memory.getFinishedSpans();
}

function serialize(spans: ReadableSpan[]): Uint8Array {
  const bytes = ProtobufTraceSerializer.serializeRequest(spans);
  if (!bytes) throw new Error('serializer produced nothing');
  return bytes;
}

/** What an SDK attribute value must decode to: integers are int_value (bigint), the rest double. */
function expectedAnyValue(v: AttributeValue | null | undefined): AnyValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return (v as (AttributeValue | null | undefined)[]).map(expectedAnyValue);
  return v as AnyValue;
}

function expectedAttributes(attrs: Attributes): KeyValue[] {
  return Object.entries(attrs).map(([key, value]) => ({ key, value: expectedAnyValue(value) }));
}

function allSpans(req: OtlpTraceRequest): OtlpSpan[] {
  return req.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
}

const realSpans = recordSpans();
const realBytes = serialize(realSpans);

describe('decodeTraceRequestProtobuf on SDK-produced payloads', () => {
  const decoded = decodeTraceRequestProtobuf(realBytes);

  it('agrees with the protobufjs reference decoder', () => {
    expect(decoded).toEqual(referenceDecode(realBytes));
  });

  it('decodes resource and scopes', () => {
    expect(decoded.resourceSpans).toHaveLength(1);
    const rs = decoded.resourceSpans[0]!;
    expect(rs.resource.attributes).toEqual(
      expect.arrayContaining([
        { key: 'service.name', value: 'checkout' },
        { key: 'host.cores', value: 8n },
        { key: 'deployment.canary', value: true },
      ]),
    );
    const scopes = rs.scopeSpans.map((ss) => [ss.scope.name, ss.scope.version, ss.schemaUrl]);
    expect(scopes).toEqual(
      expect.arrayContaining([
        ['breakwater-test', '1.2.3', ''],
        ['other-scope', '', 'https://opentelemetry.io/schemas/1.24.0'],
      ]),
    );
  });

  it('matches every source span field', () => {
    const byId = new Map(allSpans(decoded).map((s) => [s.spanId, s]));
    expect(byId.size).toBe(realSpans.length);
    for (const src of realSpans) {
      const ctx = src.spanContext();
      const span = byId.get(ctx.spanId)!;
      expect(span.traceId).toBe(ctx.traceId);
      expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(span.parentSpanId).toBe(src.parentSpanContext?.spanId ?? '');
      expect(span.traceState).toBe(ctx.traceState?.serialize() ?? '');
      expect(span.name).toBe(src.name);
      expect(span.kind).toBe(src.kind + 1);
      expect(span.startTimeUnixNano).toBe(hrTimeToNanos(src.startTime));
      expect(span.endTimeUnixNano).toBe(hrTimeToNanos(src.endTime));
      expect(span.attributes).toEqual(expectedAttributes(src.attributes));
      expect(span.status).toEqual({ code: src.status.code, message: src.status.message ?? '' });
      const remote = src.parentSpanContext?.isRemote ? 0x200 : 0;
      expect(span.flags).toBe(ctx.traceFlags | 0x100 | remote);
      expect(span.events).toEqual(
        src.events.map((e) => ({
          timeUnixNano: hrTimeToNanos(e.time),
          name: e.name,
          attributes: expectedAttributes(e.attributes ?? {}),
          droppedAttributesCount: 0,
        })),
      );
      expect(span.links).toEqual(
        src.links.map((l) => ({
          traceId: l.context.traceId,
          spanId: l.context.spanId,
          traceState: '',
          attributes: expectedAttributes(l.attributes ?? {}),
          droppedAttributesCount: 0,
          flags: l.context.traceFlags | 0x100 | (l.context.isRemote ? 0x200 : 0),
        })),
      );
    }
  });

  it('keeps attribute value types apart', () => {
    const root = allSpans(decoded).find((s) => s.name === 'root')!;
    const attr = (key: string): AnyValue => root.attributes.find((kv) => kv.key === key)!.value;
    expect(attr('int')).toBe(42n);
    expect(attr('int.negative')).toBe(-7n);
    expect(attr('int.big')).toBe(9007199254740994n);
    expect(attr('double')).toBe(3.25);
    expect(attr('bool.false')).toBe(false);
    expect(attr('str.unicode')).toBe('żółć ✓ 🚀 \uFEFF');
    expect(attr('arr.int')).toEqual([1n, -2n, 3000000000n]);
    expect(attr('arr.double')).toEqual([1.5, -2.25]);
    expect(attr('arr.with.null')).toEqual(['x', null, 'y']);
    expect(attr('arr.empty')).toEqual([]);
    expect(root.kind).toBe(2);
    expect(root.status).toEqual({ code: 2, message: 'upstream timed out' });
    expect(root.events[0]!.timeUnixNano).toBe(1_700_000_000_000_000_500n);
  });

  it('decodes short strings right when they repeat and when thousands of different ones share the intern table', () => {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    const tracer = provider.getTracer('intern');
    // 20,000 distinct keys and values (five times the table's slots, so slots are overwritten and
    // colliding strings compared), each key seen twice, plus lengths 1 to 64 and a non-ASCII one,
    // and 26 strings that differ only in a byte the hash does not read (one slot, taken in turn).
    for (let i = 0; i < 2_000; i++) {
      const attributes: Attributes = {};
      for (let k = 0; k < 10; k++) attributes[`key.${(i * 10 + k) % 10_000}`] = `value-${i}-${k}`;
      attributes['same.slot'] = `abcdef${String.fromCharCode(97 + (i % 26))}hijklmnopqrst`;
      attributes['x'.repeat((i % 64) + 1)] = 'é'.repeat(i % 3);
      tracer.startSpan(`span ${i % 7}`, { attributes }).end();
    }
    const bytes = serialize(memory.getFinishedSpans());
    for (let pass = 0; pass < 2; pass++) expect(decodeTraceRequestProtobuf(bytes)).toEqual(referenceDecode(bytes));
  });

  it('decodes an empty request and an empty body', () => {
    expect(decodeTraceRequestProtobuf(new Uint8Array(0))).toEqual({ resourceSpans: [] });
    expect(decodeTraceRequestProtobuf(serialize([]))).toEqual(referenceDecode(serialize([])));
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-built wire bytes.

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function tag(field: number, wireType: number): number[] {
  return varint(field * 8 + wireType);
}

function len(field: number, payload: ArrayLike<number>): number[] {
  return [...tag(field, 2), ...varint(payload.length), ...Array.from(payload)];
}

const utf8 = (s: string): number[] => Array.from(new TextEncoder().encode(s));

/** A request holding one span whose body is `spanBody`. */
function requestWithSpan(spanBody: number[]): Uint8Array {
  return Uint8Array.from(len(1, len(2, len(2, spanBody))));
}

/** A request holding one span with one attribute whose AnyValue body is `anyValue`. */
function requestWithValue(anyValue: ArrayLike<number>): Uint8Array {
  return requestWithSpan(len(9, [...len(1, utf8('k')), ...len(2, anyValue)]));
}

/** An AnyValue nested `levels` deep through array_value (level 1 is the outermost). */
function nestedArrays(levels: number): Uint8Array {
  // Sizes inside-out, then bytes outside-in: concatenating level by level would be quadratic.
  const anySize = [0];
  const arraySize = [0];
  for (let level = 1; level < levels; level++) {
    const array = 1 + varint(anySize[level - 1]!).length + anySize[level - 1]!;
    arraySize.push(array);
    anySize.push(1 + varint(array).length + array);
  }
  const out = new Uint8Array(anySize[levels - 1]!);
  let pos = 0;
  const put = (bytes: number[]): void => {
    out.set(bytes, pos);
    pos += bytes.length;
  };
  for (let level = levels - 1; level >= 1; level--) {
    put([...tag(5, 2), ...varint(arraySize[level]!)]);
    put([...tag(1, 2), ...varint(anySize[level - 1]!)]);
  }
  return out;
}

function nestedValue(levels: number): AnyValue {
  let v: AnyValue = null;
  for (let i = 1; i < levels; i++) v = [v];
  return v;
}

function expectDecodeError(bytes: Uint8Array, message?: RegExp): void {
  expect(() => decodeTraceRequestProtobuf(bytes)).toThrow(OtlpDecodeError);
  if (message) expect(() => decodeTraceRequestProtobuf(bytes)).toThrow(message);
}

describe('decodeTraceRequestProtobuf wire handling', () => {
  it('defaults every missing field', () => {
    expect(decodeTraceRequestProtobuf(requestWithSpan([]))).toEqual({
      resourceSpans: [
        {
          resource: { attributes: [], droppedAttributesCount: 0 },
          schemaUrl: '',
          scopeSpans: [
            {
              scope: { name: '', version: '', attributes: [], droppedAttributesCount: 0 },
              schemaUrl: '',
              spans: [
                {
                  traceId: '', spanId: '', traceState: '', parentSpanId: '', flags: 0, name: '', kind: 0,
                  startTimeUnixNano: 0n, endTimeUnixNano: 0n, attributes: [], droppedAttributesCount: 0,
                  events: [], droppedEventsCount: 0, links: [], droppedLinksCount: 0,
                  status: { code: 0, message: '' },
                },
              ],
            },
          ],
        },
      ],
    });
  });

  it('reads 64-bit extremes exactly', () => {
    const fixed64 = (field: number, hex: string): number[] => [...tag(field, 1), ...Buffer.from(hex, 'hex')];
    const span = allSpans(
      decodeTraceRequestProtobuf(requestWithSpan([...fixed64(7, 'ffffffffffffffff'), ...fixed64(8, '0100000001000000')])),
    )[0]!;
    expect(span.startTimeUnixNano).toBe(2n ** 64n - 1n);
    expect(span.endTimeUnixNano).toBe(2n ** 32n + 1n);
    for (const v of [0n, 1n, -1n, 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n]) {
      const bytes = requestWithValue([...tag(3, 0), ...varint(v)]);
      expect(allSpans(decodeTraceRequestProtobuf(bytes))[0]!.attributes[0]!.value).toBe(v);
    }
  });

  it('writes 8- and 16-byte ids as lowercase hex, for every byte value', () => {
    for (let first = 0; first < 256; first += 32) {
      const bytes = Array.from({ length: 32 }, (_, i) => first + i);
      const [trace, span, parent] = [bytes.slice(0, 16), bytes.slice(16, 24), bytes.slice(24, 32)];
      const body = requestWithSpan([...tag(1, 2), 16, ...trace, ...tag(2, 2), 8, ...span, ...tag(4, 2), 8, ...parent]);
      const decoded = allSpans(decodeTraceRequestProtobuf(body))[0]!;
      expect([decoded.traceId, decoded.spanId, decoded.parentSpanId]).toEqual([trace, span, parent].map((id) => Buffer.from(id).toString('hex')));
      expect(decodeTraceRequestProtobuf(body)).toEqual(referenceDecode(body));
    }
  });

  it('reads a negative enum sign-extended to 10 bytes', () => {
    const bytes = requestWithSpan([...tag(6, 0), ...varint(-1)]);
    expect(allSpans(decodeTraceRequestProtobuf(bytes))[0]!.kind).toBe(-1);
    expect(decodeTraceRequestProtobuf(bytes)).toEqual(referenceDecode(bytes));
  });

  it('keeps the last of a repeated scalar and merges repeated messages, like protobufjs', () => {
    const status = (body: number[]): number[] => len(15, body);
    const bytes = requestWithSpan([
      ...len(5, utf8('first')),
      ...len(5, utf8('second')),
      ...status([...tag(3, 0), 2]),
      ...status(len(2, utf8('msg'))),
      ...len(9, [...len(1, utf8('k')), ...len(2, len(5, len(1, [...tag(2, 0), 1]))), ...len(2, len(5, len(1, [])))]),
      ...len(9, [...len(2, len(6, len(1, len(1, utf8('a'))))), ...len(2, len(6, len(1, len(1, utf8('b')))))]),
      ...len(9, [...len(2, len(5, [])), ...len(2, len(1, utf8('replaced')))]),
    ]);
    const decoded = decodeTraceRequestProtobuf(bytes);
    expect(decoded).toEqual(referenceDecode(bytes));
    const span = allSpans(decoded)[0]!;
    expect(span.name).toBe('second');
    expect(span.status).toEqual({ code: 2, message: 'msg' });
    expect(span.attributes.map((kv) => kv.value)).toEqual([
      [true, null],
      { kvlist: [{ key: 'a', value: null }, { key: 'b', value: null }] },
      'replaced',
    ]);
  });

  it('skips a known field that arrives with another wire type', () => {
    const bytes = requestWithSpan([...tag(5, 0), 7, ...tag(1, 5), 1, 2, 3, 4, ...len(5, utf8('ok'))]);
    const span = allSpans(decodeTraceRequestProtobuf(bytes))[0]!;
    expect(span.name).toBe('ok');
    expect(span.traceId).toBe('');
    expect(decodeTraceRequestProtobuf(bytes)).toEqual(referenceDecode(bytes));
  });

  it('preserves a leading byte order mark', () => {
    const span = allSpans(decodeTraceRequestProtobuf(requestWithSpan(len(5, utf8('\uFEFFname')))))[0]!;
    expect(span.name).toBe('\uFEFFname');
  });

  it.each([
    ['lone continuation byte', [0x80]],
    ['invalid byte', [0x61, 0xff]],
    ['overlong encoding', [0xc0, 0xaf]],
    ['encoded surrogate', [0xed, 0xa0, 0x80]],
    ['truncated sequence', [0xe2, 0x82]],
    ['invalid byte after a long ASCII prefix', [...utf8('x'.repeat(100)), 0xfe]],
  ])('rejects invalid UTF-8: %s', (_name, bad) => {
    expectDecodeError(requestWithSpan(len(5, bad)), /UTF-8/);
    expectDecodeError(requestWithValue(len(1, bad)), /UTF-8/);
    expectDecodeError(requestWithSpan(len(9, len(1, bad))), /UTF-8/);
    expect(() => referenceDecode(requestWithSpan(len(5, bad)))).toThrow(OtlpDecodeError);
  });

  it(`accepts AnyValue nesting up to ${MAX_ANY_VALUE_DEPTH} levels`, () => {
    const bytes = requestWithValue(nestedArrays(MAX_ANY_VALUE_DEPTH));
    const decoded = decodeTraceRequestProtobuf(bytes);
    expect(allSpans(decoded)[0]!.attributes[0]!.value).toEqual(nestedValue(MAX_ANY_VALUE_DEPTH));
    expect(decoded).toEqual(referenceDecode(bytes));
  });

  it('rejects deeper AnyValue nesting, however deep, without overflowing the stack', () => {
    expectDecodeError(requestWithValue(nestedArrays(MAX_ANY_VALUE_DEPTH + 1)), /nested deeper than 32/);
    expectDecodeError(requestWithValue(nestedArrays(100_000)), /nested deeper than 32/);
    // kvlist nesting counts the same way: AnyValue{kvlist{KeyValue{value: AnyValue{...}}}}
    let kv: number[] = [];
    for (let i = 0; i < 40; i++) kv = len(6, len(1, len(2, kv)));
    expectDecodeError(requestWithValue(kv), /nested deeper than 32/);
  });

  it('rejects deeply nested unknown groups', () => {
    const depth = 100_000;
    const bytes = new Uint8Array(depth * 2 * 2);
    for (let i = 0; i < depth; i++) bytes.set(tag(100, 3), i * 2);
    for (let i = 0; i < depth; i++) bytes.set(tag(100, 4), (depth + i) * 2);
    expectDecodeError(bytes, /groups nested deeper/);
  });

  it.each([
    ['truncated varint', [0x0a, 0x80]],
    ['length past end', [0x0a, 0x05, 0x00]],
    ['huge length', [0x0a, ...varint(0xffffffff)]],
    ['length that only fits after truncation to 32 bits', [0x0a, ...varint(2n ** 32n), 0x00]],
    ['varint over 10 bytes', [0x08, ...new Array<number>(10).fill(0xff), 0x01]],
    ['varint over 64 bits', [0x08, ...new Array<number>(9).fill(0xff), 0x02]],
    ['wire type 6', [...tag(9, 6)]],
    ['wire type 7', [...tag(9, 7)]],
    ['stray end-group', [...tag(9, 4)]],
    ['unterminated group', [...tag(9, 3), 0x08, 0x01]],
    ['mismatched end-group', [...tag(9, 3), ...tag(8, 4)]],
    ['field number 0', [0x00]],
    ['truncated fixed64', [...tag(99, 1), 1, 2, 3]],
  ])('throws OtlpDecodeError on %s', (_name, bytes) => {
    expectDecodeError(Uint8Array.from(bytes), /offset \d+/);
  });

  it('names the field and offset of a truncated nested field', () => {
    const bytes = requestWithSpan([...tag(7, 1), 1, 2, 3]);
    expectDecodeError(bytes, /field 7 \(wire type 1\): truncated: 8 bytes needed, 3 left at offset 7/);
  });

  it('skips unknown fields of every wire type at every level', () => {
    const withUnknown = injectUnknownFields(realBytes, 'Request');
    expect(withUnknown.length).toBeGreaterThan(realBytes.length * 2);
    expect(decodeTraceRequestProtobuf(withUnknown)).toEqual(decodeTraceRequestProtobuf(realBytes));
    expect(decodeTraceRequestProtobuf(withUnknown)).toEqual(referenceDecode(withUnknown));
  });
});

// Which fields of each message hold sub-messages, to walk a payload and rewrite every level.
const SUB_MESSAGES: Record<string, Record<number, string>> = {
  Request: { 1: 'ResourceSpans' },
  ResourceSpans: { 1: 'Resource', 2: 'ScopeSpans' },
  Resource: { 1: 'KeyValue' },
  ScopeSpans: { 1: 'Scope', 2: 'Span' },
  Scope: { 3: 'KeyValue' },
  Span: { 9: 'KeyValue', 11: 'Event', 13: 'Link', 15: 'Status' },
  Event: { 3: 'KeyValue' },
  Link: { 4: 'KeyValue' },
  Status: {},
  KeyValue: { 2: 'AnyValue' },
  AnyValue: { 5: 'ArrayValue', 6: 'KvList' },
  ArrayValue: { 1: 'AnyValue' },
  KvList: { 1: 'KeyValue' },
};

/** Unknown fields of every wire type, including a group holding a nested group. */
const UNKNOWN_FIELDS: number[] = [
  ...tag(1000, 0), ...varint(-1n),
  ...tag(1001, 1), 1, 2, 3, 4, 5, 6, 7, 8,
  ...len(1002, utf8('from a newer schema')),
  ...tag(1003, 5), 9, 9, 9, 9,
  ...tag(1004, 3), ...tag(1, 0), 1, ...tag(2, 3), ...len(3, [0xff]), ...tag(2, 4), ...tag(1004, 4),
];

/** Re-encodes a (valid) message with UNKNOWN_FIELDS before and after its own fields. */
function injectUnknownFields(bytes: Uint8Array, type: string): Uint8Array {
  const out: number[] = [...UNKNOWN_FIELDS];
  let pos = 0;
  const readVarint = (): number => {
    let value = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = bytes[pos++]!;
      value += (b & 0x7f) * shift;
      if (b < 0x80) return value;
    }
  };
  while (pos < bytes.length) {
    const start = pos;
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (wireType === 0) readVarint();
    else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else if (wireType !== 2) throw new Error(`unexpected wire type ${wireType}`);
    if (wireType !== 2) {
      out.push(...bytes.subarray(start, pos));
      continue;
    }
    const length = readVarint();
    const payload = bytes.subarray(pos, pos + length);
    pos += length;
    const child = SUB_MESSAGES[type]![field];
    out.push(...(child ? len(field, injectUnknownFields(payload, child)) : len(field, payload)));
  }
  out.push(...UNKNOWN_FIELDS);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------------
// Properties.

/** ids of any length up to `length` bytes, and often of exactly `length` (the decoder's fast path) */
const hexId = (length: number): fc.Arbitrary<string> =>
  fc
    .oneof(fc.uint8Array({ minLength: length, maxLength: length }), fc.uint8Array({ maxLength: length }))
    .map((b) => Buffer.from(b).toString('hex'));
const text = fc.string({ unit: 'binary', maxLength: 40 });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const uint64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

const { anyValue } = fc.letrec<{ anyValue: AnyValue; keyValue: KeyValue }>((tie) => ({
  anyValue: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    text,
    fc.boolean(),
    fc.double(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    fc.uint8Array({ maxLength: 16 }),
    fc.array(tie('anyValue'), { maxLength: 4 }),
    fc.array(tie('keyValue'), { maxLength: 4 }).map((kvlist) => ({ kvlist })),
  ),
  keyValue: fc.record({ key: text, value: tie('anyValue') }),
}));
const attributes = fc.array(fc.record({ key: text, value: anyValue }), { maxLength: 4 });

const spanArb = fc.record({
  traceId: hexId(16),
  spanId: hexId(8),
  traceState: text,
  parentSpanId: hexId(8),
  flags: uint32,
  name: text,
  kind: fc.oneof(fc.integer({ min: 0, max: 5 }), int32),
  startTimeUnixNano: uint64,
  endTimeUnixNano: uint64,
  attributes,
  droppedAttributesCount: uint32,
  events: fc.array(
    fc.record({ timeUnixNano: uint64, name: text, attributes, droppedAttributesCount: uint32 }),
    { maxLength: 3 },
  ),
  droppedEventsCount: uint32,
  links: fc.array(
    fc.record({
      traceId: hexId(16),
      spanId: hexId(8),
      traceState: text,
      attributes,
      droppedAttributesCount: uint32,
      flags: uint32,
    }),
    { maxLength: 3 },
  ),
  droppedLinksCount: uint32,
  status: fc.record({ code: fc.oneof(fc.integer({ min: 0, max: 2 }), int32), message: text }),
});

const requestArb: fc.Arbitrary<OtlpTraceRequest> = fc.record({
  resourceSpans: fc.array(
    fc.record({
      resource: fc.record({ attributes, droppedAttributesCount: uint32 }),
      scopeSpans: fc.array(
        fc.record({
          scope: fc.record({ name: text, version: text, attributes, droppedAttributesCount: uint32 }),
          spans: fc.array(spanArb, { maxLength: 3 }),
          schemaUrl: text,
        }),
        { maxLength: 3 },
      ),
      schemaUrl: text,
    }),
    { maxLength: 3 },
  ),
});

/** Decodes, or throws OtlpDecodeError; any other exception fails the property. */
function decodeOrReject(decode: (b: Uint8Array) => OtlpTraceRequest, bytes: Uint8Array): OtlpTraceRequest | undefined {
  try {
    return decode(bytes);
  } catch (err) {
    if (err instanceof OtlpDecodeError) return undefined;
    throw err;
  }
}

/** Both decoders may reject different malformed inputs, but whatever both accept they agree on. */
function checkHostile(bytes: Uint8Array): void {
  const fast = decodeOrReject(decodeTraceRequestProtobuf, bytes);
  const reference = decodeOrReject(referenceDecode, bytes);
  if (fast !== undefined && reference !== undefined) expect(fast).toEqual(reference);
}

describe('decodeTraceRequestProtobuf properties', () => {
  it('decodes any model encoded by protobufjs back to the model, like referenceDecode', () => {
    fc.assert(
      fc.property(requestArb, (model) => {
        const bytes = referenceEncode(model);
        const decoded = decodeTraceRequestProtobuf(bytes);
        expect(decoded).toEqual(model);
        expect(decoded).toEqual(referenceDecode(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes or throws OtlpDecodeError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), checkHostile), { numRuns: 3000 });
  });

  it('decodes or throws OtlpDecodeError on truncated real payloads', () => {
    for (let cut = 0; cut < realBytes.length; cut++) checkHostile(realBytes.subarray(0, cut));
  });

  it('decodes or throws OtlpDecodeError on mutated real payloads', () => {
    const mutation = fc.array(
      fc.record({ index: fc.nat({ max: realBytes.length - 1 }), byte: fc.integer({ min: 0, max: 255 }) }),
      { minLength: 1, maxLength: 8 },
    );
    fc.assert(
      fc.property(mutation, fc.option(fc.nat({ max: realBytes.length })), (edits, cut) => {
        const bytes = realBytes.slice(0, cut ?? realBytes.length);
        for (const { index, byte } of edits) if (index < bytes.length) bytes[index] = byte;
        checkHostile(bytes);
      }),
      { numRuns: 3000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('the receiver’s hand-written ExportTraceServiceResponse', () => {
  const encodeTraceResponse = (rejected: number, message: string) => new Uint8Array(exportResponse('protobuf', rejected, message).body);

  it('is the empty message on full success', () => {
    const bytes = encodeTraceResponse(0, '');
    expect(bytes).toHaveLength(0);
    expect(ExportTraceServiceResponseType.toObject(ExportTraceServiceResponseType.decode(bytes))).toEqual({});
  });

  it.each([
    [3, 'span 1: missing trace id'],
    [0, 'warning: attribute truncated'],
    [2 ** 40, ''],
  ])('round-trips partial success (%d, %j)', (rejected, message) => {
    const bytes = encodeTraceResponse(rejected, message);
    const decoded = ExportTraceServiceResponseType.toObject(ExportTraceServiceResponseType.decode(bytes), {
      longs: String,
      defaults: true,
    });
    expect(decoded).toEqual({ partialSuccess: { rejectedSpans: String(rejected), errorMessage: message } });
    // The SDK exporter's own response parser reads it the same way.
    expect(ProtobufTraceSerializer.deserializeResponse(bytes)).toMatchObject({
      // proto3 leaves zero / empty fields off the wire, so the parser leaves them undefined.
      partialSuccess: { ...(rejected ? { rejectedSpans: rejected } : {}), ...(message ? { errorMessage: message } : {}) },
    });
  });
});

describe('peekResources (the receiver refuses a limited tenant before decoding its spans)', () => {
  const peekResourceTenants = (bytes: Uint8Array) => peekResources(bytes)?.map(resourceTenant);
  const resourceWith = (tenant?: string) =>
    len(1, tenant === undefined ? [] : len(1, [...len(1, utf8('tenant.id')), ...len(2, len(1, utf8(tenant)))]));

  it('reads each resource\'s tenant.id, like the full decode, from SDK payloads', () => {
    const requests = [realBytes, serialize([])];
    for (const tenant of ['acme', 'other']) {
      const memory = new InMemorySpanExporter();
      const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'tenant.id': tenant }), spanProcessors: [new SimpleSpanProcessor(memory)] });
      provider.getTracer('t').startSpan('s').end();
      requests.push(serialize(memory.getFinishedSpans()));
    }
    for (const bytes of requests) {
      const full = decodeTraceRequestProtobuf(bytes).resourceSpans.map((rs) => rs.resource);
      expect(peekResources(bytes)).toEqual(full);
    }
    expect(peekResourceTenants(requests[2]!)).toEqual(['acme']);
  });

  it('skips the spans unread, even when they would not decode, and gives up on a malformed resource', () => {
    const garbageSpans = len(2, [0xff, 0xff, 0xff]);
    const request = Uint8Array.from([...len(1, [...resourceWith('flooder'), ...garbageSpans]), ...len(1, resourceWith())]);
    expect(peekResourceTenants(request)).toEqual(['flooder', '']);
    expect(() => decodeTraceRequestProtobuf(request)).toThrow();
    expect(peekResourceTenants(Uint8Array.from(len(1, resourceWith('flooder')).slice(0, -2)))).toBeUndefined();
    expect(peekResourceTenants(Uint8Array.from([0xff, 0xff]))).toBeUndefined();
  });
});
