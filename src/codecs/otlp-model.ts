// The decoded shape of an OTLP ExportTraceServiceRequest, independent of its wire encoding.
// Both the protobuf and the JSON decoders produce exactly this, so everything after decoding
// has one input type. Field names follow opentelemetry-proto.

/** Nested key/value list (AnyValue.kvlist_value); an object wrapper tells it apart from an array. */
export interface KvList {
  kvlist: KeyValue[];
}

/**
 * AnyValue without a tag allocation per value:
 * string, boolean, number (double), bigint (int64), Uint8Array (bytes), array, kvlist;
 * null for an AnyValue with no value set.
 */
export type AnyValue = string | boolean | number | bigint | Uint8Array | AnyValue[] | KvList | null;

export interface KeyValue {
  key: string;
  value: AnyValue;
}

export interface OtlpEvent {
  timeUnixNano: bigint;
  name: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export interface OtlpLink {
  /** lowercase hex, 32 chars */
  traceId: string;
  /** lowercase hex, 16 chars */
  spanId: string;
  traceState: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  flags: number;
}

export interface OtlpStatus {
  /** 0 unset, 1 ok, 2 error */
  code: number;
  message: string;
}

export interface OtlpSpan {
  /** lowercase hex, 32 chars ('' when absent: rejected by validation) */
  traceId: string;
  /** lowercase hex, 16 chars */
  spanId: string;
  traceState: string;
  /** lowercase hex, '' for a root span */
  parentSpanId: string;
  flags: number;
  name: string;
  /** SpanKind enum: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: KeyValue[];
  droppedAttributesCount: number;
  events: OtlpEvent[];
  droppedEventsCount: number;
  links: OtlpLink[];
  droppedLinksCount: number;
  status: OtlpStatus;
}

export interface OtlpScope {
  name: string;
  version: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export interface OtlpScopeSpans {
  scope: OtlpScope;
  spans: OtlpSpan[];
  schemaUrl: string;
}

export interface OtlpResource {
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export interface OtlpResourceSpans {
  resource: OtlpResource;
  scopeSpans: OtlpScopeSpans[];
  schemaUrl: string;
}

export interface OtlpTraceRequest {
  resourceSpans: OtlpResourceSpans[];
  /** attributes the decoder dropped for the attribute limits (set when it was given limits) */
  droppedAttributes?: number;
}

/** AnyValue nesting deeper than this is hostile, not telemetry: both decoders refuse it. */
export const MAX_ANY_VALUE_DEPTH = 32;

/** The body could not be decoded as an OTLP trace request; the receiver answers 400 with this message. */
export class OtlpDecodeError extends Error {
  override name = 'OtlpDecodeError';
}

export const SPAN_KIND_NAMES = [
  'UNSPECIFIED',
  'INTERNAL',
  'SERVER',
  'CLIENT',
  'PRODUCER',
  'CONSUMER',
] as const;

export const STATUS_CODE_NAMES = ['UNSET', 'OK', 'ERROR'] as const;
