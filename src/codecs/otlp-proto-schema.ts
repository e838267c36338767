// The opentelemetry-proto v1 trace messages, parsed at runtime by protobufjs.
//
// This is the generic-library path: `referenceDecode` is the correctness oracle for the
// hand-written decoder in decode-protobuf.ts and the "decode floor" benchmarks compare against.
// Field numbers are copied from opentelemetry-proto (common/v1/common.proto,
// resource/v1/resource.proto, trace/v1/trace.proto, collector/trace/v1/trace_service.proto);
// packages are flattened into one because nothing here depends on the fully qualified names.
import protobuf from 'protobufjs';
import {
  OtlpDecodeError,
  type AnyValue,
  type KeyValue,
  type OtlpEvent,
  type OtlpLink,
  type OtlpResource,
  type OtlpResourceSpans,
  type OtlpScope,
  type OtlpScopeSpans,
  type OtlpSpan,
  type OtlpStatus,
  type OtlpTraceRequest,
} from './otlp-model.js';

const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue {
  string key = 1;
  AnyValue value = 2;
}
message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
message Resource {
  repeated KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}

message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans {
  Resource resource = 1;
  repeated ScopeSpans scope_spans = 2;
  string schema_url = 3;
}
message ScopeSpans {
  InstrumentationScope scope = 1;
  repeated Span spans = 2;
  string schema_url = 3;
}
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  fixed32 flags = 16;
  string name = 5;
  enum SpanKind {
    SPAN_KIND_UNSPECIFIED = 0;
    SPAN_KIND_INTERNAL = 1;
    SPAN_KIND_SERVER = 2;
    SPAN_KIND_CLIENT = 3;
    SPAN_KIND_PRODUCER = 4;
    SPAN_KIND_CONSUMER = 5;
  }
  SpanKind kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  message Event {
    fixed64 time_unix_nano = 1;
    string name = 2;
    repeated KeyValue attributes = 3;
    uint32 dropped_attributes_count = 4;
  }
  repeated Event events = 11;
  uint32 dropped_events_count = 12;
  message Link {
    bytes trace_id = 1;
    bytes span_id = 2;
    string trace_state = 3;
    repeated KeyValue attributes = 4;
    uint32 dropped_attributes_count = 5;
    fixed32 flags = 6;
  }
  repeated Link links = 13;
  uint32 dropped_links_count = 14;
  Status status = 15;
}
message Status {
  reserved 1;
  string message = 2;
  enum StatusCode {
    STATUS_CODE_UNSET = 0;
    STATUS_CODE_OK = 1;
    STATUS_CODE_ERROR = 2;
  }
  StatusCode code = 3;
}

message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
message ExportTracePartialSuccess {
  int64 rejected_spans = 1;
  string error_message = 2;
}
`;

/** The parsed schema; field names are protobufjs' camelCase conversions (`resourceSpans`, ...). */
export const otlpTraceRoot: protobuf.Root = protobuf.parse(OTLP_TRACE_PROTO).root;

export const ExportTraceServiceRequestType: protobuf.Type = otlpTraceRoot.lookupType(
  'otlp.ExportTraceServiceRequest',
);
export const ExportTraceServiceResponseType: protobuf.Type = otlpTraceRoot.lookupType(
  'otlp.ExportTraceServiceResponse',
);

// protobufjs returns 64-bit fields as long.js instances (it depends on `long`); only the
// accessors used for an exact conversion are declared here.
interface LongLike {
  toString(): string;
}

// Shapes of protobufjs-decoded messages: proto3 scalars left at their default are absent.
interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: LongLike | number;
  doubleValue?: number;
  arrayValue?: { values?: PbAnyValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Uint8Array;
  /** virtual oneof discriminator: the name of the member that was set last */
  value?: string;
}
interface PbKeyValue {
  key?: string;
  value?: PbAnyValue | null;
}
interface PbAttributed {
  attributes?: PbKeyValue[];
  droppedAttributesCount?: number;
}
interface PbEvent extends PbAttributed {
  timeUnixNano?: LongLike | number;
  name?: string;
}
interface PbLink extends PbAttributed {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  traceState?: string;
  flags?: number;
}
interface PbSpan extends PbAttributed {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  traceState?: string;
  parentSpanId?: Uint8Array;
  flags?: number;
  name?: string;
  kind?: number;
  startTimeUnixNano?: LongLike | number;
  endTimeUnixNano?: LongLike | number;
  events?: PbEvent[];
  droppedEventsCount?: number;
  links?: PbLink[];
  droppedLinksCount?: number;
  status?: { code?: number; message?: string } | null;
}
interface PbScopeSpans {
  scope?: (PbAttributed & { name?: string; version?: string }) | null;
  spans?: PbSpan[];
  schemaUrl?: string;
}
interface PbResourceSpans {
  resource?: PbAttributed | null;
  scopeSpans?: PbScopeSpans[];
  schemaUrl?: string;
}
interface PbRequest {
  resourceSpans?: PbResourceSpans[];
}

/**
 * Decode with protobufjs and convert to the model. Slow but trusted: the oracle for tests and
 * the baseline for benchmarks. 64-bit values go through their exact decimal strings, never
 * through a lossy number.
 */
export function referenceDecode(bytes: Uint8Array): OtlpTraceRequest {
  let decoded: PbRequest;
  try {
    decoded = ExportTraceServiceRequestType.decode(bytes) as unknown as PbRequest;
  } catch (err) {
    throw new OtlpDecodeError(`invalid OTLP protobuf: ${(err as Error).message}`);
  }
  return { resourceSpans: (decoded.resourceSpans ?? []).map(toResourceSpans) };
}

function toResourceSpans(rs: PbResourceSpans): OtlpResourceSpans {
  return {
    resource: toResource(rs.resource),
    scopeSpans: (rs.scopeSpans ?? []).map(toScopeSpans),
    schemaUrl: rs.schemaUrl ?? '',
  };
}

function toResource(r: PbResourceSpans['resource']): OtlpResource {
  return {
    attributes: toAttributes(r?.attributes),
    droppedAttributesCount: r?.droppedAttributesCount ?? 0,
  };
}

function toScopeSpans(ss: PbScopeSpans): OtlpScopeSpans {
  return { scope: toScope(ss.scope), spans: (ss.spans ?? []).map(toSpan), schemaUrl: ss.schemaUrl ?? '' };
}

function toScope(s: PbScopeSpans['scope']): OtlpScope {
  return {
    name: s?.name ?? '',
    version: s?.version ?? '',
    attributes: toAttributes(s?.attributes),
    droppedAttributesCount: s?.droppedAttributesCount ?? 0,
  };
}

function toSpan(s: PbSpan): OtlpSpan {
  return {
    traceId: toHex(s.traceId),
    spanId: toHex(s.spanId),
    traceState: s.traceState ?? '',
    parentSpanId: toHex(s.parentSpanId),
    flags: s.flags ?? 0,
    name: s.name ?? '',
    kind: s.kind ?? 0,
    startTimeUnixNano: toUint64(s.startTimeUnixNano),
    endTimeUnixNano: toUint64(s.endTimeUnixNano),
    attributes: toAttributes(s.attributes),
    droppedAttributesCount: s.droppedAttributesCount ?? 0,
    events: (s.events ?? []).map(toEvent),
    droppedEventsCount: s.droppedEventsCount ?? 0,
    links: (s.links ?? []).map(toLink),
    droppedLinksCount: s.droppedLinksCount ?? 0,
    status: toStatus(s.status),
  };
}

function toEvent(e: PbEvent): OtlpEvent {
  return {
    timeUnixNano: toUint64(e.timeUnixNano),
    name: e.name ?? '',
    attributes: toAttributes(e.attributes),
    droppedAttributesCount: e.droppedAttributesCount ?? 0,
  };
}

function toLink(l: PbLink): OtlpLink {
  return {
    traceId: toHex(l.traceId),
    spanId: toHex(l.spanId),
    traceState: l.traceState ?? '',
    attributes: toAttributes(l.attributes),
    droppedAttributesCount: l.droppedAttributesCount ?? 0,
    flags: l.flags ?? 0,
  };
}

function toStatus(s: PbSpan['status']): OtlpStatus {
  return { code: s?.code ?? 0, message: s?.message ?? '' };
}

function toAttributes(kvs: PbKeyValue[] | undefined): KeyValue[] {
  return (kvs ?? []).map((kv) => ({ key: kv.key ?? '', value: toAnyValue(kv.value) }));
}

function toAnyValue(v: PbAnyValue | null | undefined): AnyValue {
  switch (v?.value) {
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'intValue':
      return toInt64(v.intValue);
    case 'doubleValue':
      return v.doubleValue ?? 0;
    case 'arrayValue':
      return (v.arrayValue?.values ?? []).map(toAnyValue);
    case 'kvlistValue':
      return { kvlist: toAttributes(v.kvlistValue?.values) };
    case 'bytesValue':
      // Copy: protobufjs hands out a view into the request buffer.
      return new Uint8Array(v.bytesValue ?? []);
    default:
      return null;
  }
}

// long.js prints unsigned longs unsigned and signed ones signed, so the string is exact.
function toUint64(v: LongLike | number | undefined): bigint {
  return v === undefined ? 0n : BigInt.asUintN(64, BigInt(v.toString()));
}

function toInt64(v: LongLike | number | undefined): bigint {
  return v === undefined ? 0n : BigInt.asIntN(64, BigInt(v.toString()));
}

// An absent bytes field reads as protobufjs' prototype default, which is not always a Uint8Array.
function toHex(b: Uint8Array | undefined): string {
  return b === undefined || b.length === 0 ? '' : Buffer.from(b).toString('hex');
}

/**
 * Encode a model with protobufjs: the inverse of `referenceDecode`, for tests and benchmark
 * fixtures. Empty ids are omitted, as proto3 does for default values.
 */
export function referenceEncode(request: OtlpTraceRequest): Uint8Array {
  const message = { resourceSpans: request.resourceSpans.map(fromResourceSpans) };
  return ExportTraceServiceRequestType.encode(message).finish();
}

function fromResourceSpans(rs: OtlpResourceSpans): object {
  return {
    resource: fromAttributed(rs.resource),
    scopeSpans: rs.scopeSpans.map((ss) => ({
      scope: { ...fromAttributed(ss.scope), name: ss.scope.name, version: ss.scope.version },
      spans: ss.spans.map(fromSpan),
      schemaUrl: ss.schemaUrl,
    })),
    schemaUrl: rs.schemaUrl,
  };
}

function fromAttributed(a: { attributes: KeyValue[]; droppedAttributesCount: number }): object {
  return { attributes: fromAttributes(a.attributes), droppedAttributesCount: a.droppedAttributesCount };
}

function fromSpan(s: OtlpSpan): object {
  return {
    ...fromAttributed(s),
    traceId: fromHex(s.traceId),
    spanId: fromHex(s.spanId),
    traceState: s.traceState,
    parentSpanId: fromHex(s.parentSpanId),
    flags: s.flags,
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: fromInt64(s.startTimeUnixNano),
    endTimeUnixNano: fromInt64(s.endTimeUnixNano),
    events: s.events.map((e) => ({ ...fromAttributed(e), timeUnixNano: fromInt64(e.timeUnixNano), name: e.name })),
    droppedEventsCount: s.droppedEventsCount,
    links: s.links.map((l) => ({
      ...fromAttributed(l),
      traceId: fromHex(l.traceId),
      spanId: fromHex(l.spanId),
      traceState: l.traceState,
      flags: l.flags,
    })),
    droppedLinksCount: s.droppedLinksCount,
    status: { code: s.status.code, message: s.status.message },
  };
}

function fromAttributes(kvs: KeyValue[]): object[] {
  return kvs.map((kv) => ({ key: kv.key, value: fromAnyValue(kv.value) }));
}

// An unset AnyValue is written as an empty message: protobufjs cannot encode a null element of
// a repeated field, and an empty AnyValue decodes back to null anyway.
function fromAnyValue(v: AnyValue): object {
  if (v === null) return {};
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return { doubleValue: v };
  if (typeof v === 'bigint') return { intValue: fromInt64(v) };
  if (v instanceof Uint8Array) return { bytesValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(fromAnyValue) } };
  return { kvlistValue: { values: fromAttributes(v.kvlist) } };
}

// protobufjs parses decimal strings into a signed Long; the signed view of a uint64 has the
// same 64 bits, so both int64 and fixed64 fields round-trip exactly.
function fromInt64(v: bigint): string {
  return BigInt.asIntN(64, v).toString();
}

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

