import type { AnyValue, KeyValue } from '../codecs/otlp-model.js';

/**
 * Attributes as two ClickHouse maps: the value's text (queryable as-is) and, for every value that
 * is not a string, its OTLP type, so the typed AnyValue can be rebuilt from storage.
 * Text forms: int and double in decimal, bool as true/false, bytes as base64, arrays and kvlists as
 * JSON (ints that fit a double as numbers, larger ones as strings), an empty AnyValue as ''.
 */
export interface AttributeColumns {
  values: Record<string, string>;
  types: Record<string, string>;
}

export function attributeColumns(attributes: readonly KeyValue[]): AttributeColumns {
  // No prototype: on a plain object an attribute named `__proto__` would be silently dropped.
  const values: Record<string, string> = Object.create(null) as Record<string, string>;
  const types: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const { key, value } of attributes) {
    values[key] = anyValueText(value);
    const type = anyValueType(value);
    if (type === 'string') delete types[key];
    else types[key] = type;
  }
  return { values, types };
}

export type AnyValueType = 'string' | 'bool' | 'int' | 'double' | 'bytes' | 'array' | 'kvlist' | 'empty';

export function anyValueType(value: AnyValue): AnyValueType {
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'bigint':
      return 'int';
    case 'number':
      return 'double';
    default:
      if (value === null) return 'empty';
      if (value instanceof Uint8Array) return 'bytes';
      if (Array.isArray(value)) return 'array';
      return 'kvlist';
  }
}

export function anyValueText(value: AnyValue): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'boolean':
      return String(value);
    case 'bigint':
      return intText(value);
    case 'number':
      return doubleText(value);
    default:
      if (value === null) return '';
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
      return JSON.stringify(anyValueJson(value));
  }
}

/**
 * An int's decimal text. Token counts and the like fit a double: converting and printing one takes
 * about two thirds of BigInt#toString's time (Node 24, scratch loop). A BigInt only rounds to a safe
 * integer if it is one.
 */
function intText(value: bigint): string {
  const n = Number(value);
  return Number.isSafeInteger(n) ? String(n) : String(value);
}

function doubleText(value: number): string {
  // String(1) is '1', which would read back as an int; the type map keeps it a double.
  return Number.isFinite(value) ? String(value) : value > 0 ? 'Infinity' : value < 0 ? '-Infinity' : 'NaN';
}

/** The plain-JSON form used inside arrays and kvlists. */
export function anyValueJson(value: AnyValue): unknown {
  switch (typeof value) {
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : String(value);
    case 'number':
      return Number.isFinite(value) ? value : doubleText(value);
    case 'string':
    case 'boolean':
      return value;
    default:
      if (value === null) return null;
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
      if (Array.isArray(value)) return value.map(anyValueJson);
      return Object.fromEntries(value.kvlist.map((kv) => [kv.key, anyValueJson(kv.value)]));
  }
}
