// OTLP/JSON (the protobuf JSON mapping with the OTLP deviations: hex trace and span ids,
// integer enums) to the decoded model. Strict about types: a wrong type is a 400 with the path,
// never a silently coerced value. Unknown fields are ignored, as the spec asks of receivers.

import {
  MAX_ANY_VALUE_DEPTH,
  OtlpDecodeError,
  type AnyValue,
  type KeyValue,
  type OtlpEvent,
  type OtlpLink,
  type OtlpResourceSpans,
  type OtlpScopeSpans,
  type OtlpSpan,
  type OtlpTraceRequest,
} from './otlp-model.js';
import { addDropped, CappedList, type AttributeLimits } from './attribute-limits.js';

type Json = Record<string, unknown>;

/**
 * With `limits`, each attribute list keeps at most `limits.perList` attributes (and the ones
 * Breakwater reads); the request's `droppedAttributes` says how many went.
 */
export function decodeTraceRequestJson(body: string, limits?: AttributeLimits): OtlpTraceRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new OtlpDecodeError(`invalid JSON: ${(err as Error).message}`);
  }
  const root = object(parsed, '$');
  perList = limits?.perList ?? Infinity;
  droppedInRequest = 0;
  try {
    const decoded = list(field(root, 'resourceSpans', 'resource_spans'), '$.resourceSpans', resourceSpans);
    return limits === undefined ? { resourceSpans: decoded } : { resourceSpans: decoded, droppedAttributes: droppedInRequest };
  } finally {
    perList = Infinity;
  }
}

// The cap of the decode in progress (decoding is synchronous), what it dropped in all, and what
// the last attribute list dropped (added to the droppedAttributesCount read right after it).
let perList = Infinity;
let droppedInRequest = 0;
let droppedFromLast = 0;

function droppedCount(value: unknown, path: string): number {
  const count = uint32(value, path);
  const dropped = droppedFromLast;
  droppedFromLast = 0;
  return dropped === 0 ? count : addDropped(count, dropped);
}

function resourceSpans(value: unknown, path: string): OtlpResourceSpans {
  const o = object(value, path);
  const resource = optionalObject(o.resource, `${path}.resource`);
  return {
    resource: {
      attributes: attributes(resource?.attributes, `${path}.resource.attributes`),
      droppedAttributesCount: droppedCount(field(resource ?? {}, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.resource.droppedAttributesCount`),
    },
    scopeSpans: list(field(o, 'scopeSpans', 'scope_spans'), `${path}.scopeSpans`, scopeSpans),
    schemaUrl: string(field(o, 'schemaUrl', 'schema_url'), `${path}.schemaUrl`),
  };
}

function scopeSpans(value: unknown, path: string): OtlpScopeSpans {
  const o = object(value, path);
  const scope = optionalObject(o.scope, `${path}.scope`) ?? {};
  return {
    scope: {
      name: string(scope.name, `${path}.scope.name`),
      version: string(scope.version, `${path}.scope.version`),
      attributes: attributes(scope.attributes, `${path}.scope.attributes`),
      droppedAttributesCount: droppedCount(field(scope, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.scope.droppedAttributesCount`),
    },
    spans: list(o.spans, `${path}.spans`, span),
    schemaUrl: string(field(o, 'schemaUrl', 'schema_url'), `${path}.schemaUrl`),
  };
}

function span(value: unknown, path: string): OtlpSpan {
  const o = object(value, path);
  const status = optionalObject(o.status, `${path}.status`) ?? {};
  return {
    traceId: hexId(field(o, 'traceId', 'trace_id'), `${path}.traceId`),
    spanId: hexId(field(o, 'spanId', 'span_id'), `${path}.spanId`),
    traceState: string(field(o, 'traceState', 'trace_state'), `${path}.traceState`),
    parentSpanId: hexId(field(o, 'parentSpanId', 'parent_span_id'), `${path}.parentSpanId`),
    flags: uint32(o.flags, `${path}.flags`),
    name: string(o.name, `${path}.name`),
    kind: enumValue(o.kind, `${path}.kind`, SPAN_KINDS),
    startTimeUnixNano: uint64(field(o, 'startTimeUnixNano', 'start_time_unix_nano'), `${path}.startTimeUnixNano`),
    endTimeUnixNano: uint64(field(o, 'endTimeUnixNano', 'end_time_unix_nano'), `${path}.endTimeUnixNano`),
    attributes: attributes(o.attributes, `${path}.attributes`),
    droppedAttributesCount: droppedCount(field(o, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.droppedAttributesCount`),
    events: list(o.events, `${path}.events`, event),
    droppedEventsCount: uint32(field(o, 'droppedEventsCount', 'dropped_events_count'), `${path}.droppedEventsCount`),
    links: list(o.links, `${path}.links`, link),
    droppedLinksCount: uint32(field(o, 'droppedLinksCount', 'dropped_links_count'), `${path}.droppedLinksCount`),
    status: {
      code: enumValue(status.code, `${path}.status.code`, STATUS_CODES),
      message: string(status.message, `${path}.status.message`),
    },
  };
}

function event(value: unknown, path: string): OtlpEvent {
  const o = object(value, path);
  return {
    timeUnixNano: uint64(field(o, 'timeUnixNano', 'time_unix_nano'), `${path}.timeUnixNano`),
    name: string(o.name, `${path}.name`),
    attributes: attributes(o.attributes, `${path}.attributes`),
    droppedAttributesCount: droppedCount(field(o, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.droppedAttributesCount`),
  };
}

function link(value: unknown, path: string): OtlpLink {
  const o = object(value, path);
  return {
    traceId: hexId(field(o, 'traceId', 'trace_id'), `${path}.traceId`),
    spanId: hexId(field(o, 'spanId', 'span_id'), `${path}.spanId`),
    traceState: string(field(o, 'traceState', 'trace_state'), `${path}.traceState`),
    attributes: attributes(o.attributes, `${path}.attributes`),
    droppedAttributesCount: droppedCount(field(o, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.droppedAttributesCount`),
    flags: uint32(o.flags, `${path}.flags`),
  };
}

function attributes(value: unknown, path: string): KeyValue[] {
  droppedFromLast = 0;
  if (!Array.isArray(value) || value.length <= perList) return list(value, path, (kv, p) => keyValue(kv, p, 0));
  const out: KeyValue[] = [];
  for (let i = 0; i < perList; i++) out.push(keyValue(value[i], `${path}[${i}]`, 0));
  // Past the cap only the key is looked at: a dropped attribute's value is never decoded.
  const capped = new CappedList(out);
  for (let i = perList; i < value.length; i++) {
    const item: unknown = value[i];
    const key = typeof item === 'object' && item !== null ? (item as Json).key : undefined;
    const at = capped.slot(typeof key === 'string' ? key : undefined);
    if (at !== out.length) droppedFromLast++;
    if (at >= 0) capped.put(at, keyValue(item, `${path}[${i}]`, 0));
  }
  droppedInRequest += droppedFromLast;
  return out;
}

function keyValue(value: unknown, path: string, depth: number): KeyValue {
  const o = object(value, path);
  return { key: string(o.key, `${path}.key`), value: anyValue(o.value, `${path}.value`, depth) };
}

function anyValue(value: unknown, path: string, depth: number): AnyValue {
  if (depth > MAX_ANY_VALUE_DEPTH) throw new OtlpDecodeError(`${path}: AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH} levels`);
  if (value === undefined || value === null) return null;
  const o = object(value, path);
  if ('stringValue' in o || 'string_value' in o) return string(field(o, 'stringValue', 'string_value'), `${path}.stringValue`);
  if ('boolValue' in o || 'bool_value' in o) {
    const b = field(o, 'boolValue', 'bool_value');
    if (typeof b !== 'boolean') throw new OtlpDecodeError(`${path}.boolValue: expected a boolean`);
    return b;
  }
  if ('intValue' in o || 'int_value' in o) return int64(field(o, 'intValue', 'int_value'), `${path}.intValue`);
  if ('doubleValue' in o || 'double_value' in o) return double(field(o, 'doubleValue', 'double_value'), `${path}.doubleValue`);
  if ('bytesValue' in o || 'bytes_value' in o) return bytes(field(o, 'bytesValue', 'bytes_value'), `${path}.bytesValue`);
  if ('arrayValue' in o || 'array_value' in o) {
    const arr = optionalObject(field(o, 'arrayValue', 'array_value'), `${path}.arrayValue`) ?? {};
    return list(arr.values, `${path}.arrayValue.values`, (v, p) => anyValue(v, p, depth + 1));
  }
  if ('kvlistValue' in o || 'kvlist_value' in o) {
    const kv = optionalObject(field(o, 'kvlistValue', 'kvlist_value'), `${path}.kvlistValue`) ?? {};
    return { kvlist: list(kv.values, `${path}.kvlistValue.values`, (v, p) => keyValue(v, p, depth + 1)) };
  }
  return null;
}

function field(o: Json, camel: string, snake: string): unknown {
  return o[camel] !== undefined ? o[camel] : o[snake];
}

function object(value: unknown, path: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OtlpDecodeError(`${path}: expected an object`);
  }
  return value as Json;
}

function optionalObject(value: unknown, path: string): Json | undefined {
  return value === undefined || value === null ? undefined : object(value, path);
}

function list<T>(value: unknown, path: string, item: (v: unknown, path: string) => T): T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new OtlpDecodeError(`${path}: expected an array`);
  const out = new Array<T>(value.length);
  for (let i = 0; i < value.length; i++) out[i] = item(value[i], `${path}[${i}]`);
  return out;
}

function string(value: unknown, path: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new OtlpDecodeError(`${path}: expected a string`);
  return value;
}

const HEX = /^[0-9a-fA-F]*$/;

function hexId(value: unknown, path: string): string {
  const s = string(value, path);
  if (!HEX.test(s) || s.length % 2 !== 0) throw new OtlpDecodeError(`${path}: expected a hex-encoded id`);
  return s.toLowerCase();
}

const UINT_TEXT = /^\d{1,20}$/;
const INT_TEXT = /^-?\d{1,20}$/;
const UINT64_MAX = (1n << 64n) - 1n;

function uint64(value: unknown, path: string): bigint {
  if (value === undefined || value === null) return 0n;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= Number(UINT64_MAX)) return BigInt(value);
  if (typeof value === 'string' && UINT_TEXT.test(value)) {
    const n = BigInt(value);
    if (n <= UINT64_MAX) return n;
  }
  throw new OtlpDecodeError(`${path}: expected an unsigned 64-bit integer`);
}

function int64(value: unknown, path: string): bigint {
  let n: bigint | undefined;
  if (typeof value === 'number' && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && INT_TEXT.test(value)) n = BigInt(value);
  if (n === undefined || n < -(1n << 63n) || n >= 1n << 63n) throw new OtlpDecodeError(`${path}: expected a signed 64-bit integer`);
  return n;
}

function uint32(value: unknown, path: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff) return value;
  throw new OtlpDecodeError(`${path}: expected an unsigned 32-bit integer`);
}

function double(value: unknown, path: string): number {
  if (typeof value === 'number') return value;
  // The proto3 JSON mapping spells the non-finite doubles as strings.
  if (value === 'NaN') return NaN;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  throw new OtlpDecodeError(`${path}: expected a number`);
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function bytes(value: unknown, path: string): Uint8Array {
  const s = string(value, path);
  if (!BASE64.test(s)) throw new OtlpDecodeError(`${path}: expected base64`);
  return new Uint8Array(Buffer.from(s, s.includes('-') || s.includes('_') ? 'base64url' : 'base64'));
}

const SPAN_KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
const STATUS_CODES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];

function enumValue(value: unknown, path: string, names: readonly string[]): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < names.length) return value;
  if (typeof value === 'string' && names.includes(value)) return names.indexOf(value);
  throw new OtlpDecodeError(`${path}: expected one of 0-${names.length - 1} or ${names.join(', ')}`);
}
