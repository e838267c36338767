// OTLP requests built in the decoded model, for payloads no SDK would produce (thousands of
// attributes, one resource over many spans): encode them with referenceEncode or JSON.stringify.
import type { AnyValue, KeyValue, OtlpResourceSpans, OtlpSpan, OtlpTraceRequest } from '../../src/codecs/otlp-model.js';

export const attrs = (entries: Record<string, AnyValue>): KeyValue[] => Object.entries(entries).map(([key, value]) => ({ key, value }));

/** `count` filler attributes, `prefix.0` ... */
export const filler = (count: number, prefix = 'llm.input_messages', value: AnyValue = 'x'): KeyValue[] =>
  Array.from({ length: count }, (_, i) => ({ key: `${prefix}.${i}.message.content`, value }));

let nextId = 1;

export function modelSpan(attributes: KeyValue[], overrides: Partial<OtlpSpan> = {}): OtlpSpan {
  const id = nextId++;
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  return {
    traceId: id.toString(16).padStart(32, 'a'),
    spanId: id.toString(16).padStart(16, 'b'),
    traceState: '',
    parentSpanId: '',
    flags: 0,
    name: 'chat',
    kind: 3,
    startTimeUnixNano: nowNs - 1_000_000n,
    endTimeUnixNano: nowNs,
    attributes,
    droppedAttributesCount: 0,
    events: [],
    droppedEventsCount: 0,
    links: [],
    droppedLinksCount: 0,
    status: { code: 0, message: '' },
    ...overrides,
  };
}

export function modelRequest(resource: KeyValue[], spans: OtlpSpan[]): OtlpTraceRequest {
  const resourceSpans: OtlpResourceSpans = {
    resource: { attributes: resource, droppedAttributesCount: 0 },
    scopeSpans: [{ scope: { name: 'test', version: '1', attributes: [], droppedAttributesCount: 0 }, spans, schemaUrl: '' }],
    schemaUrl: '',
  };
  return { resourceSpans: [resourceSpans] };
}

/** The OTLP/JSON body of a model request (string values, the only kind these tests send, and ints). */
export function jsonBody(request: OtlpTraceRequest): string {
  const value = (v: AnyValue): object => (typeof v === 'string' ? { stringValue: v } : typeof v === 'bigint' || typeof v === 'number' ? { intValue: String(v) } : {});
  const list = (kvs: KeyValue[]) => kvs.map(({ key, value: v }) => ({ key, value: value(v) }));
  return JSON.stringify({
    resourceSpans: request.resourceSpans.map((rs) => ({
      resource: { attributes: list(rs.resource.attributes), droppedAttributesCount: rs.resource.droppedAttributesCount },
      scopeSpans: rs.scopeSpans.map((ss) => ({
        scope: { name: ss.scope.name },
        spans: ss.spans.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          name: s.name,
          startTimeUnixNano: String(s.startTimeUnixNano),
          endTimeUnixNano: String(s.endTimeUnixNano),
          attributes: list(s.attributes),
          droppedAttributesCount: s.droppedAttributesCount,
          events: s.events.map((e) => ({ timeUnixNano: String(e.timeUnixNano), name: e.name, attributes: list(e.attributes) })),
        })),
      })),
    })),
  });
}
