// Spans to a ClickHouse Native-format block, written straight from the AgentSpans.
//
// Why Native: measured on the embedded engine (2 cores), ClickHouse parses the `spans` row (Maps
// with LowCardinality keys, Nested events and links) at about 50k rows/s from JSONEachRow and 70k
// from TSV even into a Null table, while a Native block of the same rows goes in at over 1M rows/s:
// the insert then costs only the MergeTree write (bench/run.ts, "storage floor"). Building the
// columns here also skips the per-span row object and JSON.stringify of the JSONEachRow path
// (about 7 µs a span on the main thread; this encoder takes about 2).
//
// The stored rows are the ones `spanRow` (span-rows.ts) + JSONEachRow stores, field by field; the
// test in test/storage/span-block.test.ts holds this encoder to that. Where the JSON path could
// not store a span at all (a time ClickHouse cannot parse as text, a lone UTF-16 surrogate), the
// block stores it anyway: see `dateTime64Ticks` (times) and `Bytes.string` (surrogates).
//
// Format (ClickHouse Native, as its NativeWriter writes it without a client revision): varuint
// column count, varuint row count, then per column its name, its type name and its data. Numbers
// are little-endian; String is varuint length + UTF-8; Array and Map are UInt64 end offsets then
// the flattened elements (a Map's keys, then its values); LowCardinality(String) is a UInt64
// version prefix (before any enclosing offsets), then per non-empty column a UInt64 flags word,
// the dictionary (UInt64 size + strings, '' first) and UInt64 row count + indexes.
import type { AgentSpan } from '../contracts/agent-span.js';
import { anyValueText, anyValueType, attributeColumns } from './attribute-columns.js';
import type { KeyValue, OtlpEvent, OtlpLink } from '../codecs/otlp-model.js';
import { SPAN_KIND_NAMES, STATUS_CODE_NAMES } from '../codecs/otlp-model.js';
import { classifyOutcome, errorClassOf } from '../normalize/call-outcome.js';

const LC = 'LowCardinality(String)';
const ATTRIBUTES = `Map(${LC}, String)`;
const ATTRIBUTE_TYPES = `Map(${LC}, ${LC})`;

/** The `spans` columns this block fills, in table order (IngestedAt keeps its default). */
export const SPAN_BLOCK_COLUMNS: ReadonlyArray<{ name: string; type: string }> = [
  { name: 'TenantId', type: LC },
  { name: 'RunId', type: 'String' },
  { name: 'TraceId', type: 'String' },
  { name: 'SpanId', type: 'String' },
  { name: 'ParentSpanId', type: 'String' },
  { name: 'TraceState', type: 'String' },
  { name: 'Flags', type: 'UInt32' },
  { name: 'SpanName', type: LC },
  { name: 'SpanKind', type: LC },
  { name: 'ServiceName', type: LC },
  { name: 'ScopeName', type: LC },
  { name: 'ScopeVersion', type: LC },
  { name: 'StartTime', type: 'DateTime64(9)' },
  { name: 'EndTime', type: 'DateTime64(9)' },
  { name: 'DurationNs', type: 'UInt64' },
  { name: 'StatusCode', type: LC },
  { name: 'StatusMessage', type: 'String' },
  { name: 'ResourceAttributes', type: ATTRIBUTES },
  { name: 'ResourceAttributeTypes', type: ATTRIBUTE_TYPES },
  { name: 'SpanAttributes', type: ATTRIBUTES },
  { name: 'SpanAttributeTypes', type: ATTRIBUTE_TYPES },
  { name: 'Events.Timestamp', type: 'Array(DateTime64(9))' },
  { name: 'Events.Name', type: `Array(${LC})` },
  { name: 'Events.Attributes', type: `Array(${ATTRIBUTES})` },
  { name: 'Events.AttributeTypes', type: `Array(${ATTRIBUTE_TYPES})` },
  { name: 'Events.DroppedAttributesCount', type: 'Array(UInt32)' },
  { name: 'Links.TraceId', type: 'Array(String)' },
  { name: 'Links.SpanId', type: 'Array(String)' },
  { name: 'Links.TraceState', type: 'Array(String)' },
  { name: 'Links.Flags', type: 'Array(UInt32)' },
  { name: 'Links.Attributes', type: `Array(${ATTRIBUTES})` },
  { name: 'Links.AttributeTypes', type: `Array(${ATTRIBUTE_TYPES})` },
  { name: 'Links.DroppedAttributesCount', type: 'Array(UInt32)' },
  { name: 'DroppedAttributesCount', type: 'UInt32' },
  { name: 'DroppedEventsCount', type: 'UInt32' },
  { name: 'DroppedLinksCount', type: 'UInt32' },
  { name: 'Operation', type: LC },
  { name: 'Provider', type: LC },
  { name: 'RequestModel', type: LC },
  { name: 'ResponseModel', type: LC },
  { name: 'ToolName', type: LC },
  { name: 'AgentId', type: 'String' },
  { name: 'AgentName', type: LC },
  { name: 'ConversationId', type: 'String' },
  { name: 'InputTokens', type: 'UInt32' },
  { name: 'OutputTokens', type: 'UInt32' },
  { name: 'CostUsd', type: 'Float64' },
  { name: 'ErrorType', type: LC },
  { name: 'HttpStatusCode', type: 'UInt16' },
  { name: 'IsError', type: 'Bool' },
  { name: 'ErrorClass', type: LC },
  { name: 'Depth', type: 'Int16' },
  { name: 'RateLimitRemainingRequests', type: 'Int64' },
  { name: 'RateLimitRemainingTokens', type: 'Int64' },
  { name: 'RateLimitLimitRequests', type: 'Int64' },
  { name: 'RateLimitLimitTokens', type: 'Int64' },
  { name: 'RetryAfterMs', type: 'Int64' },
  { name: 'ToolCalls', type: 'UInt16' },
];

/** `INSERT INTO <table> (<these columns>) ... FORMAT Native` */
export function spanBlockColumnList(): string {
  return SPAN_BLOCK_COLUMNS.map((c) => (c.name.includes('.') ? `\`${c.name}\`` : c.name)).join(', ');
}

// ---------------------------------------------------------------------------------------------
// Growable byte output. One set of column buffers is reused for every block (encoding is
// synchronous), so a block costs one allocation: the Buffer it is returned in.

/** Past this a reused buffer is an outlier's: emptying it gives its memory back at once. */
const RETAINED_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The capacity (in units of `unitBytes`) a reused buffer keeps once emptied, after a block that
 * used `used` of it: its initial one after an outlier, else room for `used` when it holds over
 * four times that, so one large block does not pin its memory for every small one after it.
 */
export function retainedCapacity(capacity: number, used: number, initial: number, unitBytes: number): number {
  if (capacity <= initial) return capacity;
  if (capacity * unitBytes > RETAINED_MAX_BYTES) return initial;
  let fit = initial;
  while (fit < used) fit *= 2;
  return capacity > 4 * fit ? fit : capacity;
}

class Bytes {
  buf: Buffer;
  pos = 0;

  constructor(readonly initial: number) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  reset(): void {
    this.shrink();
    this.pos = 0;
  }

  /** Gives back what retainedCapacity says is too much; what was written is gone if it did. */
  shrink(): void {
    const keep = retainedCapacity(this.buf.length, this.pos, this.initial, 1);
    if (keep === this.buf.length) return;
    this.buf = Buffer.allocUnsafe(keep);
    this.pos = 0;
  }

  capacityBytes(): number {
    return this.buf.length;
  }

  size(): number {
    return this.pos;
  }

  truncate(size: number): void {
    this.pos = size;
  }

  ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + extra) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  varUInt(value: number): void {
    this.ensure(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  /** UInt64 from a non-negative safe integer */
  uint64(value: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(value % 0x1_0000_0000, this.pos);
    this.buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), this.pos + 4);
    this.pos += 8;
  }

  /** varuint length + UTF-8 (lone surrogates become U+FFFD, as Buffer#write does) */
  string(s: string): void {
    const length = s.length;
    if (length <= 42) {
      // At most 126 UTF-8 bytes: the length prefix is one byte. Up to 16 characters (span ids,
      // names, most values), ASCII copied here beats the native call; from there (a trace id) the
      // call's fixed ~30 ns wins (Node 24, scratch loop).
      this.ensure(1 + length * 3);
      const buf = this.buf;
      const start = this.pos;
      if (length <= 16) {
        let p = start + 1;
        let i = 0;
        for (; i < length; i++) {
          const c = s.charCodeAt(i);
          if (c >= 0x80) break;
          buf[p++] = c;
        }
        if (i === length) {
          buf[start] = length;
          this.pos = p;
          return;
        }
      }
      // Longer, or not ASCII: the native write (lone surrogates become U+FFFD).
      const written = buf.write(s, start + 1, 'utf8');
      buf[start] = written;
      this.pos = start + 1 + written;
      return;
    }
    const bytes = Buffer.byteLength(s, 'utf8');
    this.varUInt(bytes);
    this.ensure(bytes);
    this.pos += this.buf.write(s, this.pos, bytes, 'utf8');
  }

  bytes(source: Uint8Array): void {
    this.ensure(source.length);
    this.buf.set(source, this.pos);
    this.pos += source.length;
  }

  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

const WORDS_INITIAL = 1024;

/** Growable typed array of 32-bit words. */
class Words {
  words = new Uint32Array(WORDS_INITIAL);
  length = 0;

  reset(): void {
    const keep = retainedCapacity(this.words.length, this.length, WORDS_INITIAL, 4);
    if (keep !== this.words.length) this.words = new Uint32Array(keep);
    this.length = 0;
  }

  capacityBytes(): number {
    return this.words.byteLength;
  }

  size(): number {
    return this.length;
  }

  truncate(size: number): void {
    this.length = size;
  }

  push(word: number): void {
    if (this.length === this.words.length) {
      const grown = new Uint32Array(this.words.length * 2);
      grown.set(this.words);
      this.words = grown;
    }
    this.words[this.length++] = word;
  }

  /** A 64-bit value as two words, low first: the little-endian byte layout. */
  push64(lo: number, hi: number): void {
    this.push(lo);
    this.push(hi);
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.words.buffer, 0, this.length * 4);
  }
}

const TWO_32 = 0x1_0000_0000;

/** Int64 words of an integer-valued double (|value| < 2^63). */
function pushInt64(words: Words, value: number): void {
  const hi = Math.floor(value / TWO_32);
  words.push64(value - hi * TWO_32, hi >>> 0);
}

const INT64_MAX = (1n << 63n) - 1n;

/**
 * DateTime64(9) ticks. Span times are validated below 2^63 ns (year 2262, the type's limit); an
 * event time past it is stored at the limit. (The JSON path wrote times as `seconds.nanos` text,
 * which ClickHouse refuses below 10-digit seconds or past the limit: that failed the whole insert.)
 */
function dateTime64Ticks(unixNano: bigint): bigint {
  return unixNano > INT64_MAX ? INT64_MAX : unixNano;
}

// ---------------------------------------------------------------------------------------------
// Columns.

/** Anything that accumulates rows: emptied per block, and cut back when a request's rows fail. */
interface Part {
  reset(): void;
  size(): number;
  truncate(size: number): void;
  /** bytes of buffers it holds on to between blocks */
  capacityBytes(): number;
}

interface Column extends Part {
  /** appends the column's data (after its name and type) */
  writeTo(out: Bytes): void;
}

class StringColumn implements Column {
  readonly data = new Bytes(1 << 16);
  reset(): void {
    this.data.reset();
  }
  capacityBytes(): number {
    return this.data.capacityBytes();
  }
  size(): number {
    return this.data.pos;
  }
  truncate(size: number): void {
    this.data.pos = size;
  }
  add(s: string): void {
    this.data.string(s);
  }
  writeTo(out: Bytes): void {
    out.bytes(this.data.view());
  }
}

/** LowCardinality(String): a per-block dictionary ('' at 0, as ClickHouse writes it) and indexes. */
class LowCardinalityColumn implements Column {
  #dictionary = new Map<string, number>();
  #keys: string[] = [''];
  #indexes = new Words();
  #last = '';
  #lastIndex = 0;

  constructor() {
    this.reset();
  }

  reset(): void {
    // New containers, not emptied ones: a block with a million distinct keys must not leave their
    // backing stores behind for every block after it.
    if (this.#keys.length > 1) {
      this.#dictionary = new Map([['', 0]]);
      this.#keys = [''];
    }
    this.#dictionary.set('', 0);
    this.#indexes.reset();
    this.#last = '';
    this.#lastIndex = 0;
  }

  get rows(): number {
    return this.#indexes.length;
  }

  /** the indexes' buffer (the dictionary is emptied with every block) */
  capacityBytes(): number {
    return this.#indexes.capacityBytes();
  }

  size(): number {
    return this.#indexes.length;
  }

  /** Dictionary entries added since stay (unused entries are harmless); the run cache does not. */
  truncate(size: number): void {
    this.#indexes.length = size;
    this.#last = '';
    this.#lastIndex = 0;
  }

  add(s: string): void {
    // Runs of one value (a resource's service, a batch's tenant) skip the hash lookup, and so does
    // '' (index 0), which the agent columns alternate with (a tool call has no model, a chat no tool).
    if (s === this.#last) {
      this.#indexes.push(this.#lastIndex);
      return;
    }
    if (s.length === 0) {
      this.#indexes.push(0);
      return;
    }
    let index = this.#dictionary.get(s);
    if (index === undefined) {
      index = this.#keys.length;
      this.#keys.push(s);
      this.#dictionary.set(s, index);
    }
    this.#last = s;
    this.#lastIndex = index;
    this.#indexes.push(index);
  }

  /** a copy of the indexes from row `start` on */
  indexesFrom(start: number): Uint32Array {
    return this.#indexes.words.slice(start, this.#indexes.length);
  }

  /** appends rows by dictionary index (indexes this column handed out since its last reset) */
  pushIndexes(indexes: Uint32Array): void {
    for (let i = 0; i < indexes.length; i++) this.#indexes.push(indexes[i]!);
    this.#last = '';
    this.#lastIndex = 0;
  }

  /** the version prefix, written once before the column (and before any enclosing offsets) */
  static writePrefix(out: Bytes): void {
    out.uint64(1); // SharedDictionariesWithAdditionalKeys
  }

  writeTo(out: Bytes): void {
    const rows = this.#indexes.length;
    if (rows === 0) return; // ClickHouse writes nothing for an empty column
    const size = this.#keys.length;
    const width = size <= 0x100 ? 0 : size <= 0x1_0000 ? 1 : 2; // UInt8, UInt16, UInt32
    // HasAdditionalKeysBit (1 << 9) | NeedUpdateDictionary (1 << 10) | index width
    out.uint64((1 << 9) | (1 << 10) | width);
    out.uint64(size);
    for (const key of this.#keys) out.string(key);
    out.uint64(rows);
    const indexes = this.#indexes.words;
    if (width === 2) {
      out.bytes(this.#indexes.bytes());
    } else if (width === 1) {
      out.ensure(rows * 2);
      for (let i = 0; i < rows; i++) out.buf.writeUInt16LE(indexes[i]!, out.pos + i * 2);
      out.pos += rows * 2;
    } else {
      out.ensure(rows);
      for (let i = 0; i < rows; i++) out.buf[out.pos + i] = indexes[i]!;
      out.pos += rows;
    }
  }

  writeColumn(out: Bytes): void {
    LowCardinalityColumn.writePrefix(out);
    this.writeTo(out);
  }
}

/** Fixed-width numbers as 32-bit words (64-bit values take two). */
class WordColumn implements Column {
  readonly words = new Words();
  constructor(readonly bytesPerValue: 1 | 2 | 4 | 8) {}
  reset(): void {
    this.words.reset();
  }
  capacityBytes(): number {
    return this.words.capacityBytes();
  }
  size(): number {
    return this.words.length;
  }
  truncate(size: number): void {
    this.words.length = size;
  }
  writeTo(out: Bytes): void {
    if (this.bytesPerValue >= 4) {
      out.bytes(this.words.bytes());
      return;
    }
    const n = this.words.length;
    const words = this.words.words;
    out.ensure(n * this.bytesPerValue);
    if (this.bytesPerValue === 2) for (let i = 0; i < n; i++) out.buf.writeUInt16LE(words[i]! & 0xffff, out.pos + i * 2);
    else for (let i = 0; i < n; i++) out.buf[out.pos + i] = words[i]! & 0xff;
    out.pos += n * this.bytesPerValue;
  }
}

class Int64Column implements Column {
  #values = new BigInt64Array(1024);
  /** the same values as 32-bit halves, low first */
  #words = new Uint32Array(this.#values.buffer);
  #length = 0;
  reset(): void {
    const keep = retainedCapacity(this.#values.length, this.#length, 1024, 8);
    if (keep !== this.#values.length) {
      this.#values = new BigInt64Array(keep);
      this.#words = new Uint32Array(this.#values.buffer);
    }
    this.#length = 0;
  }
  capacityBytes(): number {
    return this.#values.byteLength;
  }
  size(): number {
    return this.#length;
  }
  truncate(size: number): void {
    this.#length = size;
  }
  #room(): void {
    if (this.#length < this.#values.length) return;
    const grown = new BigInt64Array(this.#values.length * 2);
    grown.set(this.#values);
    this.#values = grown;
    this.#words = new Uint32Array(grown.buffer);
  }
  add(value: bigint): void {
    this.#room();
    this.#values[this.#length++] = value;
  }
  /**
   * Appends a's last value minus b's, modulo 2^64 as a BigInt64Array stores it, computed on their
   * 32-bit halves: no BigInt per row (the subtraction allocated one for every span).
   */
  addDifferenceOfLast(a: Int64Column, b: Int64Column): void {
    this.#room();
    const ia = (a.#length - 1) * 2;
    const ib = (b.#length - 1) * 2;
    const lo = a.#words[ia]! - b.#words[ib]!;
    const hi = a.#words[ia + 1]! - b.#words[ib + 1]! - (lo < 0 ? 1 : 0);
    const i = this.#length++ * 2;
    this.#words[i] = lo; // stored modulo 2^32
    this.#words[i + 1] = hi;
  }
  writeTo(out: Bytes): void {
    out.bytes(new Uint8Array(this.#values.buffer, 0, this.#length * 8));
  }
}

class Float64Column implements Column {
  #values = new Float64Array(1024);
  #length = 0;
  reset(): void {
    const keep = retainedCapacity(this.#values.length, this.#length, 1024, 8);
    if (keep !== this.#values.length) this.#values = new Float64Array(keep);
    this.#length = 0;
  }
  capacityBytes(): number {
    return this.#values.byteLength;
  }
  size(): number {
    return this.#length;
  }
  truncate(size: number): void {
    this.#length = size;
  }
  add(value: number): void {
    if (this.#length === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#length++] = value;
  }
  writeTo(out: Bytes): void {
    out.bytes(new Uint8Array(this.#values.buffer, 0, this.#length * 8));
  }
}

/** Array/Map offsets: UInt64 running ends. */
class Offsets implements Part {
  readonly words = new Words();
  #end = 0;
  reset(): void {
    this.words.reset();
    this.#end = 0;
  }
  capacityBytes(): number {
    return this.words.capacityBytes();
  }
  size(): number {
    return this.words.length;
  }
  truncate(size: number): void {
    this.words.length = size;
    this.#end = size >= 2 ? this.words.words[size - 2]! : 0; // low word of the last end (high words are 0)
  }
  close(count: number): void {
    this.#end += count;
    this.words.push64(this.#end, 0);
  }
  get end(): number {
    return this.#end;
  }
  writeTo(out: Bytes): void {
    out.bytes(this.words.bytes());
  }
}

/** The two attribute maps of one attribute list: values Map(LC, String), types Map(LC, LC). */
class AttributeMaps {
  readonly valueOffsets = new Offsets();
  readonly valueKeys = new LowCardinalityColumn();
  readonly values = new StringColumn();
  readonly typeOffsets = new Offsets();
  readonly typeKeys = new LowCardinalityColumn();
  readonly types = new LowCardinalityColumn();
  /** the last list added and what it appended, when `repeats` (see add) */
  readonly #last: Part & { attributes?: readonly KeyValue[]; keys?: Uint32Array; bytes?: Buffer; typeKeys?: Uint32Array; types?: Uint32Array } = {
    reset() {
      this.attributes = undefined;
      this.keys = this.bytes = this.typeKeys = this.types = undefined;
    },
    size: () => 0,
    truncate() {
      this.attributes = undefined;
    },
    capacityBytes() {
      return (this.bytes?.length ?? 0) + (this.keys?.byteLength ?? 0) + (this.typeKeys?.byteLength ?? 0) + (this.types?.byteLength ?? 0);
    },
  };

  /** `repeats`: lists often come again as the same array (a resource's, for each of its spans). */
  constructor(private readonly repeats = false) {}

  readonly #shapes = new AttributeShapes();

  get parts(): Part[] {
    return [this.valueOffsets, this.valueKeys, this.values, this.typeOffsets, this.typeKeys, this.types, this.#last, this.#shapes];
  }

  /** Forgets the remembered list (called per request: a later request's arrays are its own). */
  forget(): void {
    this.#last.attributes = undefined;
  }

  add(attributes: readonly KeyValue[]): void {
    const start = this.valueKeys.rows;
    const typesStart = this.typeKeys.rows;
    const last = this.#last;
    if (attributes === last.attributes) {
      // The same list as the previous span's: append the same entries again, already encoded.
      this.valueKeys.pushIndexes(last.keys!);
      this.values.data.bytes(last.bytes!);
      this.typeKeys.pushIndexes(last.typeKeys!);
      this.types.pushIndexes(last.types!);
      this.valueOffsets.close(last.keys!.length);
      this.typeOffsets.close(last.typeKeys!.length);
      return;
    }
    const bytesStart = this.values.data.pos;
    const shape = this.#shapes.find(attributes);
    if (shape !== undefined) {
      this.valueKeys.pushIndexes(shape.keys);
      for (let i = 0; i < attributes.length; i++) this.values.add(anyValueText(attributes[i]!.value));
      this.typeKeys.pushIndexes(shape.typeKeys);
      this.types.pushIndexes(shape.types);
    } else if (plainKeys(attributes)) {
      for (const { key, value } of attributes) {
        this.valueKeys.add(key);
        this.values.add(anyValueText(value));
        const type = anyValueType(value);
        if (type !== 'string') {
          this.typeKeys.add(key);
          this.types.add(type);
        }
      }
      this.#shapes.remember(attributes, this.valueKeys.indexesFrom(start), this.typeKeys.indexesFrom(typesStart), this.types.indexesFrom(typesStart));
    } else {
      // Repeated or integer-like keys: the maps hold what the JSON object held, in its key order.
      const { values, types } = attributeColumns(attributes);
      for (const key of Object.keys(values)) {
        this.valueKeys.add(key);
        this.values.add(values[key]!);
      }
      for (const key of Object.keys(types)) {
        this.typeKeys.add(key);
        this.types.add(types[key]!);
      }
    }
    this.valueOffsets.close(this.valueKeys.rows - start);
    this.typeOffsets.close(this.typeKeys.rows - typesStart);
    if (this.repeats) {
      last.attributes = attributes;
      last.keys = this.valueKeys.indexesFrom(start);
      last.bytes = Buffer.from(this.values.data.buf.subarray(bytesStart, this.values.data.pos));
      last.typeKeys = this.typeKeys.indexesFrom(typesStart);
      last.types = this.types.indexesFrom(typesStart);
    }
  }

  writeValues(out: Bytes, outer?: Offsets): void {
    LowCardinalityColumn.writePrefix(out);
    outer?.writeTo(out);
    this.valueOffsets.writeTo(out);
    this.valueKeys.writeTo(out);
    this.values.writeTo(out);
  }

  writeTypes(out: Bytes, outer?: Offsets): void {
    LowCardinalityColumn.writePrefix(out);
    LowCardinalityColumn.writePrefix(out);
    outer?.writeTo(out);
    this.typeOffsets.writeTo(out);
    this.typeKeys.writeTo(out);
    this.types.writeTo(out);
  }
}

interface AttributeShape {
  names: readonly string[];
  valueTypes: readonly string[];
  /** the block's dictionary indexes of the keys, of the typed keys and of their types */
  keys: Uint32Array;
  typeKeys: Uint32Array;
  types: Uint32Array;
}

const SHAPES_KEPT = 8;

/**
 * The key and value-type sequences of recent attribute lists that went in wire order (plainKeys),
 * with their dictionary indexes. One instrumentation repeats a few such sequences span after span
 * (its chat calls, its tool calls): a match skips the duplicate-key check and the dictionary
 * lookups of keys and types, leaving only the values to write. The indexes hold until the block's
 * dictionaries are emptied (reset); cutting rows back (truncate) keeps dictionary entries.
 */
class AttributeShapes implements Part {
  readonly #shapes: AttributeShape[] = [];
  #next = 0;

  reset(): void {
    this.#shapes.length = 0;
    this.#next = 0;
  }

  size(): number {
    return 0;
  }

  truncate(): void {}

  capacityBytes(): number {
    return 0;
  }

  find(attributes: readonly KeyValue[]): AttributeShape | undefined {
    const n = attributes.length;
    next: for (let s = 0; s < this.#shapes.length; s++) {
      const shape = this.#shapes[s]!;
      if (shape.names.length !== n) continue;
      for (let i = 0; i < n; i++) {
        const { key, value } = attributes[i]!;
        if (key !== shape.names[i] || anyValueType(value) !== shape.valueTypes[i]) continue next;
      }
      return shape;
    }
    return undefined;
  }

  remember(attributes: readonly KeyValue[], keys: Uint32Array, typeKeys: Uint32Array, types: Uint32Array): void {
    const shape = { names: attributes.map((a) => a.key), valueTypes: attributes.map((a) => anyValueType(a.value)), keys, typeKeys, types };
    if (this.#shapes.length < SHAPES_KEPT) this.#shapes.push(shape);
    else this.#shapes[this.#next++ % SHAPES_KEPT] = shape;
  }
}

/**
 * True when the attributes can go to the maps in wire order: no key repeats and none is an
 * array index ('0', '17', ...), which a JS object would have moved to the front in numeric order.
 */
function plainKeys(attributes: readonly KeyValue[]): boolean {
  const n = attributes.length;
  for (let i = 0; i < n; i++) {
    const key = attributes[i]!.key;
    const c = key.charCodeAt(0);
    if (c >= 48 && c <= 57 && isArrayIndex(key)) return false;
    if (n <= 16) {
      for (let j = 0; j < i; j++) if (attributes[j]!.key === key) return false;
    }
  }
  if (n > 16) {
    const seen = new Set<string>();
    for (const { key } of attributes) {
      if (seen.has(key)) return false;
      seen.add(key);
    }
  }
  return true;
}

function isArrayIndex(key: string): boolean {
  if (!/^(0|[1-9][0-9]*)$/.test(key)) return false;
  return Number(key) < 0xffff_ffff;
}

// ---------------------------------------------------------------------------------------------

/**
 * Accumulates spans into one Native block: `add` as requests arrive, `finish` when the batch goes.
 * One block per insert matters: ClickHouse pays a fixed cost for every block it takes in (about a
 * millisecond for this table on this machine), so forty 500-row blocks cost more than their rows.
 */
export class SpanBlockEncoder {
  readonly tenantId = new LowCardinalityColumn();
  readonly runId = new StringColumn();
  readonly traceId = new StringColumn();
  readonly spanId = new StringColumn();
  readonly parentSpanId = new StringColumn();
  readonly traceState = new StringColumn();
  readonly flags = new WordColumn(4);
  readonly spanName = new LowCardinalityColumn();
  readonly spanKind = new LowCardinalityColumn();
  readonly serviceName = new LowCardinalityColumn();
  readonly scopeName = new LowCardinalityColumn();
  readonly scopeVersion = new LowCardinalityColumn();
  readonly startTime = new Int64Column();
  readonly endTime = new Int64Column();
  readonly durationNs = new Int64Column();
  readonly statusCode = new LowCardinalityColumn();
  readonly statusMessage = new StringColumn();
  readonly resource = new AttributeMaps(true);
  readonly attributes = new AttributeMaps();
  readonly eventOffsets = new Offsets();
  readonly eventTime = new Int64Column();
  readonly eventName = new LowCardinalityColumn();
  readonly eventAttributes = new AttributeMaps();
  readonly eventDropped = new WordColumn(4);
  readonly linkOffsets = new Offsets();
  readonly linkTraceId = new StringColumn();
  readonly linkSpanId = new StringColumn();
  readonly linkTraceState = new StringColumn();
  readonly linkFlags = new WordColumn(4);
  readonly linkAttributes = new AttributeMaps();
  readonly linkDropped = new WordColumn(4);
  readonly droppedAttributes = new WordColumn(4);
  readonly droppedEvents = new WordColumn(4);
  readonly droppedLinks = new WordColumn(4);
  readonly operation = new LowCardinalityColumn();
  readonly provider = new LowCardinalityColumn();
  readonly requestModel = new LowCardinalityColumn();
  readonly responseModel = new LowCardinalityColumn();
  readonly toolName = new LowCardinalityColumn();
  readonly agentId = new StringColumn();
  readonly agentName = new LowCardinalityColumn();
  readonly conversationId = new StringColumn();
  readonly inputTokens = new WordColumn(4);
  readonly outputTokens = new WordColumn(4);
  readonly costUsd = new Float64Column();
  readonly errorType = new LowCardinalityColumn();
  readonly httpStatusCode = new WordColumn(2);
  readonly isError = new WordColumn(1);
  readonly errorClass = new LowCardinalityColumn();
  readonly depth = new WordColumn(2);
  readonly toolCalls = new WordColumn(2);
  readonly rateLimitRemainingRequests = new Words();
  readonly rateLimitRemainingTokens = new Words();
  readonly rateLimitLimitRequests = new Words();
  readonly rateLimitLimitTokens = new Words();
  readonly retryAfterMs = new Words();
  /** size of the last block: a fresh output buffer starts there */
  #lastBlockBytes = 1 << 16;
  /** finishReused's output (grows to the largest block) */
  readonly #output = new Bytes(1 << 16);
  readonly #parts: readonly Part[] = (Object.values(this) as Array<Part | AttributeMaps>).flatMap((p) => (p instanceof AttributeMaps ? p.parts : [p]));
  #rows = 0;

  /** rows added since the last finish */
  get rows(): number {
    return this.#rows;
  }

  /** Appends spans (costUsd[i] is span i's cost). All or nothing: on an exception no row is kept. */
  add(spans: readonly AgentSpan[], costUsd: ArrayLike<number>): void {
    this.resource.forget();
    const sizes = this.#parts.map((p) => p.size());
    try {
      for (let i = 0; i < spans.length; i++) this.#add(spans[i]!, costUsd[i]!);
    } catch (err) {
      this.#parts.forEach((p, i) => p.truncate(sizes[i]!));
      throw err;
    }
    this.#rows += spans.length;
  }

  /** The block of every row added, in a Buffer of its own; empties the encoder for the next batch. */
  finish(): Buffer {
    return this.#finishInto(new Bytes(Math.min(RETAINED_MAX_BYTES, this.#lastBlockBytes + (this.#lastBlockBytes >> 3))));
  }

  /**
   * Like finish, but the block is written into a buffer this encoder keeps and reuses: it is valid
   * until this encoder's next finishReused or releaseBlock. A multi-megabyte Buffer per insert is
   * external memory to V8, whose growth schedules GCs of its own.
   */
  finishReused(): Buffer {
    this.#output.reset();
    return this.#finishInto(this.#output);
  }

  /** The block finishReused returned is no longer needed: an outlier's buffer is given back now. */
  releaseBlock(): void {
    this.#output.shrink();
  }

  /** Bytes of buffers this encoder holds on to between blocks (columns and the reused output). */
  get retainedBytes(): number {
    let bytes = this.#output.capacityBytes();
    for (const part of this.#parts) bytes += part.capacityBytes();
    return bytes;
  }

  #finishInto(out: Bytes): Buffer {
    const block = this.#finish(this.#rows, out);
    for (const part of this.#parts) part.reset();
    this.#rows = 0;
    return block;
  }

  #add(span: AgentSpan, cost: number): void {
    this.tenantId.add(span.tenantId);
    this.runId.add(span.runId);
    this.traceId.add(span.traceId);
    this.spanId.add(span.spanId);
    this.parentSpanId.add(span.parentSpanId);
    this.traceState.add(span.traceState);
    this.flags.words.push(span.flags);
    this.spanName.add(span.name);
    this.spanKind.add(SPAN_KIND_NAMES[span.kind] ?? String(span.kind));
    this.serviceName.add(span.serviceName);
    this.scopeName.add(span.scopeName);
    this.scopeVersion.add(span.scopeVersion);
    const start = span.startTimeUnixNano;
    const end = span.endTimeUnixNano;
    this.startTime.add(dateTime64Ticks(start));
    this.endTime.add(dateTime64Ticks(end));
    // The low 64 bits of end - start, as asIntN(64): from the two columns unless one was clamped.
    if (start <= INT64_MAX && end <= INT64_MAX) this.durationNs.addDifferenceOfLast(this.endTime, this.startTime);
    else this.durationNs.add(end - start);
    this.statusCode.add(STATUS_CODE_NAMES[span.statusCode] ?? String(span.statusCode));
    this.statusMessage.add(span.statusMessage);
    this.resource.add(span.resourceAttributes);
    this.attributes.add(span.spanAttributes);
    this.#addEvents(span.events);
    this.#addLinks(span.links);
    this.droppedAttributes.words.push(span.droppedAttributesCount);
    this.droppedEvents.words.push(span.droppedEventsCount);
    this.droppedLinks.words.push(span.droppedLinksCount);
    this.operation.add(span.operation);
    this.provider.add(span.provider);
    this.requestModel.add(span.requestModel);
    this.responseModel.add(span.responseModel);
    this.toolName.add(span.toolName);
    this.agentId.add(span.agentId);
    this.agentName.add(span.agentName);
    this.conversationId.add(span.conversationId);
    this.inputTokens.words.push(span.inputTokens);
    this.outputTokens.words.push(span.outputTokens);
    // JSON had no NaN or Infinity (null, stored as the default 0) and no -0.
    this.costUsd.add(Number.isFinite(cost) && cost !== 0 ? cost : 0);
    this.errorType.add(span.errorType);
    this.httpStatusCode.words.push(span.httpStatusCode);
    this.isError.words.push(span.isError ? 1 : 0);
    this.errorClass.add(errorClassOf(classifyOutcome(span)));
    this.depth.words.push(Math.max(-1, Math.min(32767, span.depth)) & 0xffff);
    this.toolCalls.words.push(Math.max(0, Math.min(0xffff, span.toolCalls)));
    pushInt64(this.rateLimitRemainingRequests, span.rateLimitRemainingRequests);
    pushInt64(this.rateLimitRemainingTokens, span.rateLimitRemainingTokens);
    pushInt64(this.rateLimitLimitRequests, span.rateLimitLimitRequests);
    pushInt64(this.rateLimitLimitTokens, span.rateLimitLimitTokens);
    pushInt64(this.retryAfterMs, span.retryAfterMs);
  }

  // Indexed loops: spans without events or links share one frozen empty array (decode-protobuf.ts),
  // on which for-of allocates an iterator.
  #addEvents(events: readonly OtlpEvent[]): void {
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      this.eventTime.add(dateTime64Ticks(event.timeUnixNano));
      this.eventName.add(event.name);
      this.eventAttributes.add(event.attributes);
      this.eventDropped.words.push(event.droppedAttributesCount);
    }
    this.eventOffsets.close(events.length);
  }

  #addLinks(links: readonly OtlpLink[]): void {
    for (let i = 0; i < links.length; i++) {
      const link = links[i]!;
      this.linkTraceId.add(link.traceId);
      this.linkSpanId.add(link.spanId);
      this.linkTraceState.add(link.traceState);
      this.linkFlags.words.push(link.flags);
      this.linkAttributes.add(link.attributes);
      this.linkDropped.words.push(link.droppedAttributesCount);
    }
    this.linkOffsets.close(links.length);
  }

  #finish(rows: number, out: Bytes): Buffer {
    out.varUInt(SPAN_BLOCK_COLUMNS.length);
    out.varUInt(rows);
    let column = 0;
    const header = () => {
      const { name, type } = SPAN_BLOCK_COLUMNS[column++]!;
      out.string(name);
      out.string(type);
    };
    const plain = (c: Column) => {
      header();
      c.writeTo(out);
    };
    const lowCardinality = (c: LowCardinalityColumn) => {
      header();
      c.writeColumn(out);
    };
    const words = (w: Words) => {
      header();
      out.bytes(w.bytes());
    };
    const array = (offsets: Offsets, c: Column) => {
      header();
      offsets.writeTo(out);
      c.writeTo(out);
    };
    lowCardinality(this.tenantId);
    plain(this.runId);
    plain(this.traceId);
    plain(this.spanId);
    plain(this.parentSpanId);
    plain(this.traceState);
    plain(this.flags);
    lowCardinality(this.spanName);
    lowCardinality(this.spanKind);
    lowCardinality(this.serviceName);
    lowCardinality(this.scopeName);
    lowCardinality(this.scopeVersion);
    plain(this.startTime);
    plain(this.endTime);
    plain(this.durationNs);
    lowCardinality(this.statusCode);
    plain(this.statusMessage);
    header();
    this.resource.writeValues(out);
    header();
    this.resource.writeTypes(out);
    header();
    this.attributes.writeValues(out);
    header();
    this.attributes.writeTypes(out);
    array(this.eventOffsets, this.eventTime);
    header();
    LowCardinalityColumn.writePrefix(out);
    this.eventOffsets.writeTo(out);
    this.eventName.writeTo(out);
    header();
    this.eventAttributes.writeValues(out, this.eventOffsets);
    header();
    this.eventAttributes.writeTypes(out, this.eventOffsets);
    array(this.eventOffsets, this.eventDropped);
    array(this.linkOffsets, this.linkTraceId);
    array(this.linkOffsets, this.linkSpanId);
    array(this.linkOffsets, this.linkTraceState);
    array(this.linkOffsets, this.linkFlags);
    header();
    this.linkAttributes.writeValues(out, this.linkOffsets);
    header();
    this.linkAttributes.writeTypes(out, this.linkOffsets);
    array(this.linkOffsets, this.linkDropped);
    plain(this.droppedAttributes);
    plain(this.droppedEvents);
    plain(this.droppedLinks);
    lowCardinality(this.operation);
    lowCardinality(this.provider);
    lowCardinality(this.requestModel);
    lowCardinality(this.responseModel);
    lowCardinality(this.toolName);
    plain(this.agentId);
    lowCardinality(this.agentName);
    plain(this.conversationId);
    plain(this.inputTokens);
    plain(this.outputTokens);
    plain(this.costUsd);
    lowCardinality(this.errorType);
    plain(this.httpStatusCode);
    plain(this.isError);
    lowCardinality(this.errorClass);
    plain(this.depth);
    words(this.rateLimitRemainingRequests);
    words(this.rateLimitRemainingTokens);
    words(this.rateLimitLimitRequests);
    words(this.rateLimitLimitTokens);
    words(this.retryAfterMs);
    plain(this.toolCalls);
    if (column !== SPAN_BLOCK_COLUMNS.length) throw new Error(`span block wrote ${column} of ${SPAN_BLOCK_COLUMNS.length} columns`);
    this.#lastBlockBytes = out.pos;
    return out.view();
  }
}

const shared = new SpanBlockEncoder();

/**
 * One Native block holding `spans` (costUsd[i] is span i's cost). Blocks concatenate: a file or
 * body of several blocks is one insert.
 */
export function encodeSpanBlock(spans: readonly AgentSpan[], costUsd: ArrayLike<number>): Buffer {
  shared.add(spans, costUsd);
  return shared.finish();
}
