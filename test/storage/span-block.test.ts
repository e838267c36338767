// The Native block encoder (span-block.ts) against the straightforward path it replaced: spanRow
// + JSON.stringify + JSONEachRow. Both insert the same spans into twin tables; every stored field
// of every row must match, compared as ClickHouse's own TSV text (exact floats, Map key order).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { AgentSpan } from '../../src/contracts/agent-span.js';
import type { AnyValue, KeyValue, OtlpEvent, OtlpLink } from '../../src/codecs/otlp-model.js';
import { openStore, queryRows, type Store } from '../../src/storage/clickhouse.js';
import { migrate } from '../../src/storage/migrations.js';
import { encodeSpanBlock, SPAN_BLOCK_COLUMNS, SpanBlockEncoder } from '../../src/storage/span-block.js';
import { blockInserterFor, type BlockInserter } from '../../src/storage/span-insert.js';
import { spanRow } from '../../src/storage/span-rows.js';
import { tempDataDir } from '../helpers/service.js';

let store: Store;
let fast: BlockInserter;

beforeAll(async () => {
  store = await openStore({ url: undefined, user: '', password: '', database: 'default', dataDir: tempDataDir('bw-block-') });
  await migrate(store.client);
  // Twins of `spans` without its TTL (test spans may be old) and without the rollup view.
  for (const table of ['spans_json', 'spans_native']) {
    await store.client.command({ query: `CREATE TABLE ${table} AS spans ENGINE = MergeTree ORDER BY SpanId` });
  }
  fast = blockInserterFor(store.client, 'spans_native');
});

afterAll(async () => {
  fast?.close();
  await store?.close();
});

async function truncate(): Promise<void> {
  for (const table of ['spans_json', 'spans_native']) await store.client.command({ query: `TRUNCATE TABLE ${table}` });
}

async function insertJson(spans: readonly AgentSpan[], costs: readonly number[]): Promise<void> {
  const body = spans.map((span, i) => JSON.stringify(spanRow(span, costs[i]!))).join('\n');
  const result = await store.client.exec({ query: 'INSERT INTO spans_json FORMAT JSONEachRow', values: Readable.from([Buffer.from(body)]) });
  result.stream.resume();
}

async function insertNative(spans: readonly AgentSpan[], costs: readonly number[], blockRows = spans.length): Promise<void> {
  const blocks: Buffer[] = [];
  for (let i = 0; i < spans.length; i += blockRows) {
    blocks.push(encodeSpanBlock(spans.slice(i, i + blockRows), costs.slice(i, i + blockRows)));
  }
  await fast.insert(blocks);
}

/** Every stored column as ClickHouse prints it, row by row (ordered by the unique SpanId). */
async function storedRows(table: string): Promise<Array<Record<string, string>>> {
  const result = await store.client.query({ query: `SELECT * EXCEPT IngestedAt FROM ${table} ORDER BY SpanId`, format: 'TabSeparatedWithNames' });
  const [header, ...lines] = (await result.text()).split('\n').filter((line) => line !== '');
  const names = header!.split('\t');
  return lines.map((line) => {
    const fields = line.split('\t');
    return Object.fromEntries(names.map((name, i) => [name, fields[i]!]));
  });
}

async function expectSameRows(spans: readonly AgentSpan[], costs: readonly number[], blockRows?: number): Promise<void> {
  await truncate();
  await insertJson(spans, costs);
  await insertNative(spans, costs, blockRows);
  const json = await storedRows('spans_json');
  const native = await storedRows('spans_native');
  expect(json).toHaveLength(spans.length);
  expect(native).toHaveLength(spans.length);
  for (let i = 0; i < json.length; i++) {
    for (const column of Object.keys(json[i]!)) {
      expect({ row: i, column, value: native[i]![column] }).toEqual({ row: i, column, value: json[i]![column] });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Spans. Times stay where the JSON path can store them (10-digit seconds up to DateTime64(9)'s
// end); the cases it cannot store have their own tests below.

const NOW_NS = BigInt(Date.now()) * 1_000_000n;
const MIN_TEXT_TIME_NS = 1_000_000_000n * 1_000_000_000n; // 2001-09-09: 10-digit seconds
const MAX_TIME_NS = (1n << 63n) - 1n;

const special = fc.constantFrom(
  '',
  '\t',
  '\n',
  '\r\n',
  '\\',
  "'",
  '"',
  '\\t',
  "it's a \"quote\"",
  'tab\there',
  'back\\slash\\',
  '\u0000nul',
  '\u0001\u001f\u007f',
  '\u2028\u2029',
  'é',
  'Ωμέγα',
  '日本語',
  '😀🚀',
  'a\u0301',
  '\ufeffbom',
  '{}',
  "{'k':'v'}",
  '[1,2]',
  'x'.repeat(43),
  'é'.repeat(50),
  'long '.repeat(40),
);
const text = fc.oneof({ arbitrary: special, weight: 2 }, { arbitrary: fc.string({ unit: 'binary', maxLength: 24 }), weight: 3 });
const keyText = fc.oneof(
  { arbitrary: fc.constantFrom('0', '1', '7', '42', '4294967294', '4294967295', '01', '-1', '1.5', '__proto__', 'constructor', 'toString', 'gen_ai.usage.input_tokens', 'k', 'k2'), weight: 2 },
  { arbitrary: text, weight: 3 },
);
const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
const uint32 = fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const storableTime = fc.oneof(
  fc.constantFrom(MIN_TEXT_TIME_NS, NOW_NS, MAX_TIME_NS, MAX_TIME_NS - 999_999_999n),
  fc.bigInt({ min: MIN_TEXT_TIME_NS, max: MAX_TIME_NS }),
);
const counter = fc.oneof(fc.constant(-1), fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

const { anyValue } = fc.letrec<{ anyValue: AnyValue; keyValue: KeyValue }>((tie) => ({
  anyValue: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text,
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.constantFrom(0, -0, 1, -1.5, 1e21, 5e-324, Number.MAX_VALUE, NaN, Infinity, -Infinity),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    fc.constantFrom(-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -1n, 0n),
    fc.uint8Array({ maxLength: 12 }),
    fc.array(tie('anyValue'), { maxLength: 3 }),
    fc.array(tie('keyValue'), { maxLength: 3 }).map((kvlist) => ({ kvlist })),
  ),
  keyValue: fc.record({ key: keyText, value: tie('anyValue') }),
}));
const attributes: fc.Arbitrary<KeyValue[]> = fc.array(fc.record({ key: keyText, value: anyValue }), { maxLength: 6 });
const event: fc.Arbitrary<OtlpEvent> = fc.record({ timeUnixNano: storableTime, name: text, attributes, droppedAttributesCount: uint32 });
const link: fc.Arbitrary<OtlpLink> = fc.record({
  traceId: fc.oneof(hex(16), fc.constant('')),
  spanId: fc.oneof(hex(8), fc.constant('')),
  traceState: text,
  attributes,
  droppedAttributesCount: uint32,
  flags: uint32,
});

const spanArb: fc.Arbitrary<Omit<AgentSpan, 'spanId'>> = fc
  .record({
    tenantId: text,
    runId: text,
    traceId: hex(16),
    parentSpanId: fc.oneof(fc.constant(''), hex(8)),
    traceState: text,
    flags: uint32,
    name: text,
    kind: fc.oneof(fc.integer({ min: 0, max: 6 }), int32),
    start: storableTime,
    durationNs: fc.oneof(fc.constantFrom(0n, 1n, 999_999_999n), fc.bigInt({ min: 0n, max: 10n ** 12n })),
    statusCode: fc.oneof(fc.integer({ min: 0, max: 3 }), int32),
    statusMessage: text,
    serviceName: text,
    scopeName: text,
    scopeVersion: text,
    resourceAttributes: attributes,
    spanAttributes: attributes,
    events: fc.array(event, { maxLength: 3 }),
    links: fc.array(link, { maxLength: 3 }),
    droppedAttributesCount: uint32,
    droppedEventsCount: uint32,
    droppedLinksCount: uint32,
    operation: fc.oneof(fc.constantFrom('', 'chat', 'execute_tool', 'invoke_agent'), text),
    provider: text,
    requestModel: text,
    responseModel: text,
    toolName: text,
    toolCalls: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constant(0)),
    agentId: text,
    agentName: text,
    conversationId: text,
    inputTokens: uint32,
    outputTokens: uint32,
    errorType: text,
    httpStatusCode: fc.integer({ min: 0, max: 999 }),
    isError: fc.boolean(),
    depth: fc.oneof(fc.integer({ min: -1, max: 1000 }), fc.constantFrom(32767, 40000)),
    rateLimitRemainingRequests: counter,
    rateLimitRemainingTokens: counter,
    rateLimitLimitRequests: counter,
    rateLimitLimitTokens: counter,
    retryAfterMs: counter,
  })
  .map(({ start, durationNs, ...rest }) => {
    const end = start + durationNs > MAX_TIME_NS ? MAX_TIME_NS : start + durationNs;
    return { ...rest, startTimeUnixNano: start, endTimeUnixNano: end };
  });
const cost = fc.oneof(fc.double(), fc.constantFrom(0, -0, 0.1, 1e-9, 5e-324, 1e308, NaN, Infinity, -Infinity));

/**
 * Unique span ids, and every other span shares the previous one's resource attribute list (the
 * same array, as normalization hands out for spans of one resource: the encoder reuses its work).
 */
function withIds(spans: ReadonlyArray<Omit<AgentSpan, 'spanId'>>): AgentSpan[] {
  const out = spans.map((span, i) => ({ ...span, spanId: (i + 1).toString(16).padStart(16, '0') }));
  for (let i = 1; i < out.length; i += 2) out[i]!.resourceAttributes = out[i - 1]!.resourceAttributes;
  return out;
}

function span(patch: Partial<AgentSpan> = {}): AgentSpan {
  return {
    tenantId: 'tenant-a',
    runId: 'run-1',
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: '00f067aa0ba902b7',
    parentSpanId: '',
    traceState: '',
    flags: 1,
    name: 'chat gpt-4o',
    kind: 3,
    startTimeUnixNano: NOW_NS,
    endTimeUnixNano: NOW_NS + 1_500_000n,
    statusCode: 0,
    statusMessage: '',
    serviceName: 'agent',
    scopeName: 'scope',
    scopeVersion: '1.0',
    resourceAttributes: [{ key: 'tenant.id', value: 'tenant-a' }],
    spanAttributes: [],
    events: [],
    links: [],
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    operation: 'chat',
    provider: 'openai',
    requestModel: 'gpt-4o',
    responseModel: '',
    toolName: '',
    toolCalls: 0,
    agentId: '',
    agentName: '',
    conversationId: '',
    inputTokens: 10,
    outputTokens: 5,
    errorType: '',
    httpStatusCode: 0,
    isError: false,
    depth: -1,
    rateLimitRemainingRequests: -1,
    rateLimitRemainingTokens: -1,
    rateLimitLimitRequests: -1,
    rateLimitLimitTokens: -1,
    retryAfterMs: -1,
    ...patch,
  };
}

describe('Native span blocks', () => {
  it('fill exactly the columns of the spans table, in order, with its types', async () => {
    const columns = await queryRows<{ name: string; type: string }>(
      store.client,
      "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'spans' AND name != 'IngestedAt' ORDER BY position",
    );
    expect(SPAN_BLOCK_COLUMNS).toEqual(columns);
  });

  it('store what the JSONEachRow rows stored, field by field, for arbitrary spans', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(spanArb, cost), { minLength: 1, maxLength: 12 }), async (pairs) => {
        const spans = withIds(pairs.map(([s]) => s));
        await expectSameRows(spans, pairs.map(([, c]) => c));
      }),
      { numRuns: 60 },
    );
  });

  it('store the same when a batch is many blocks, and when dictionaries outgrow one-byte indexes', async () => {
    const spans = Array.from({ length: 1200 }, (_, i) =>
      span({
        spanId: (i + 1).toString(16).padStart(16, '0'),
        name: `span ${i}`, // 1200 distinct names: two-byte dictionary indexes
        tenantId: `tenant-${i % 7}`,
        spanAttributes: [
          { key: `key-${i % 300}`, value: BigInt(i) },
          { key: 'gen_ai.usage.input_tokens', value: i },
        ],
        events: i % 3 === 0 ? [] : [{ timeUnixNano: NOW_NS + BigInt(i), name: `event ${i % 5}`, attributes: [{ key: 'e', value: i % 2 === 0 }], droppedAttributesCount: i }],
        links: i % 4 === 0 ? [{ traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), traceState: 'k=v', attributes: [], droppedAttributesCount: 0, flags: i }] : [],
      }),
    );
    const costs = spans.map((_, i) => i / 7);
    await expectSameRows(spans, costs, 500);
    await expectSameRows(spans, costs, 37);
  });

  it('store the same when attribute lists repeat their keys with other value types, orders and counts', async () => {
    // Twelve list shapes (more than the encoder remembers), cycled, over blocks of 7 rows: the same
    // keys with a value of another type, in another order, one key more, a repeated key.
    const shapes: Array<(i: number) => AgentSpan['spanAttributes']> = [
      (i) => [{ key: 'op', value: 'chat' }, { key: 'tokens', value: BigInt(i) }],
      (i) => [{ key: 'op', value: 'chat' }, { key: 'tokens', value: `${i}` }],
      (i) => [{ key: 'op', value: 'chat' }, { key: 'tokens', value: i + 0.5 }],
      (i) => [{ key: 'tokens', value: BigInt(i) }, { key: 'op', value: 'tool' }],
      (i) => [{ key: 'op', value: 'chat' }, { key: 'tokens', value: BigInt(i) }, { key: 'model', value: 'm' }],
      (i) => [{ key: 'op', value: 'chat' }, { key: 'tokens', value: BigInt(i) }, { key: 'op', value: i % 2 === 0 }],
      (i) => [{ key: 'op', value: null }, { key: 'tokens', value: [BigInt(i), 'x'] }],
      (i) => [{ key: 'op', value: { kvlist: [{ key: 'k', value: BigInt(i) }] } }],
      () => [],
      (i) => [{ key: '7', value: BigInt(i) }, { key: 'op', value: 'chat' }],
      (i) => [{ key: 'op', value: new Uint8Array([i & 0xff, 1]) }, { key: 'tokens', value: false }],
      () => [{ key: 'op', value: 'chat' }],
    ];
    const spans = withIds(Array.from({ length: 150 }, (_, i) => span({ spanAttributes: shapes[(i * 5) % shapes.length]!(i) })));
    const costs = spans.map(() => 0);
    await expectSameRows(spans, costs, 7);
    await expectSameRows(spans, costs);
  });

  it('write the same bytes into the reused buffer as into a fresh one, batch after batch', () => {
    const batch = (n: number, offset: number) =>
      Array.from({ length: n }, (_, i) => span({ spanId: (offset + i + 1).toString(16).padStart(16, '0'), name: `span ${offset + i}`, tenantId: `tenant-${i % 3}` }));
    const reused = new SpanBlockEncoder();
    const fresh = new SpanBlockEncoder();
    let previous: Buffer | undefined;
    for (const [n, offset] of [[300, 0], [40, 300], [900, 340], [1, 1240]] as const) {
      const spans = batch(n, offset);
      const costs = spans.map((_, i) => i / 3);
      reused.add(spans, costs);
      fresh.add(spans, costs);
      const block = reused.finishReused();
      const expected = fresh.finish();
      expect(Buffer.compare(block, expected)).toBe(0);
      // the reused buffer: the same memory each time (grown in place when a block outgrows it)
      if (previous !== undefined && block.length <= previous.length) expect(block.buffer).toBe(previous.buffer);
      previous = block;
    }
  });

  it('store repeated and integer-like attribute keys as the JSON object held them', async () => {
    const spans = [
      span({
        spanAttributes: [
          { key: 'b', value: 1n },
          { key: '10', value: 'ten' },
          { key: 'a', value: 'x' },
          { key: '2', value: 2.5 },
          { key: 'b', value: 'now a string' },
          { key: '__proto__', value: 'kept' },
          { key: 'a', value: true },
        ],
      }),
    ];
    await expectSameRows(spans, [0]);
    const rows = await queryRows<{ keys: string[]; typeKeys: string[] }>(
      store.client,
      'SELECT mapKeys(SpanAttributes) AS keys, mapKeys(SpanAttributeTypes) AS typeKeys FROM spans_native',
    );
    expect(rows).toEqual([{ keys: ['2', '10', 'b', 'a', '__proto__'], typeKeys: ['2', 'a'] }]);
  });

  it('store spans the JSON path could not: early and late times, lone surrogates', async () => {
    const spans = [
      span({ spanId: '0000000000000001', startTimeUnixNano: 0n, endTimeUnixNano: 1n }),
      span({
        spanId: '0000000000000002',
        events: [{ timeUnixNano: 2n ** 64n - 1n, name: 'late', attributes: [], droppedAttributesCount: 0 }],
      }),
      span({ spanId: '0000000000000003', name: 'lone \ud800 surrogate', spanAttributes: [{ key: '\udc00', value: 'x\ud83d' }] }),
      // Past the type's end (the receiver refuses these; the encoder still stores them): times at
      // the limit, the duration as it was.
      span({ spanId: '0000000000000004', startTimeUnixNano: 2n ** 63n + 5n, endTimeUnixNano: 2n ** 64n - 1n }),
    ];
    await truncate();
    await insertNative(spans, [0, 0, 0, 0]);
    const rows = await queryRows<{ start: string; end: string; duration: string; events: string[]; name: string; attrs: Record<string, string> }>(
      store.client,
      `SELECT toString(toUnixTimestamp64Nano(StartTime)) AS start, toString(toUnixTimestamp64Nano(EndTime)) AS end, toString(DurationNs) AS duration,
              arrayMap(t -> toString(toUnixTimestamp64Nano(t)), Events.Timestamp) AS events, SpanName AS name, SpanAttributes AS attrs
       FROM spans_native ORDER BY SpanId`,
    );
    expect(rows[0]!.start).toBe('0');
    expect(rows[0]!.duration).toBe('1');
    expect(rows[3]).toMatchObject({ start: String(2n ** 63n - 1n), end: String(2n ** 63n - 1n), duration: String(2n ** 63n - 6n) });
    expect(rows[1]!.events).toEqual([String(2n ** 63n - 1n)]); // clamped to DateTime64(9)'s end
    expect(rows[2]!.name).toBe('lone \ufffd surrogate');
    expect(rows[2]!.attrs).toEqual({ '\ufffd': 'x\ufffd' });
  });

  // In memory (tmpfs: written synchronously) and on a disk (asynchronously), where the machine has both.
  const spoolRoots = [tmpdir(), '/dev/shm'].filter((dir, i, all) => existsSync(dir) && all.indexOf(dir) === i);
  it.each(spoolRoots)('write each insert over a spool file of its own, cut to the block, and leave none behind after close (in %s)', async (parent) => {
    const root = mkdtempSync(join(parent, 'bw-spool-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const inserter = blockInserterFor(store.client, 'spans_native', root);
    const missing = blockInserterFor(store.client, 'no_such_table', root);
    const three = encodeSpanBlock(['01', '02', '03'].map((n) => span({ spanId: `00000000000000${n}` })), [0, 0, 0]);
    const one = encodeSpanBlock([span({ spanId: '0000000000000004' })], [0]);
    await truncate();
    await inserter.insert([three]);
    // A shorter block over the longer one: what is left of the longer one past its end is not read.
    await inserter.insert([one]);
    expect(readdirSync(root).map((name) => statSync(join(root, name)).size)).toEqual([one.length]);
    await expect(missing.insert([one])).rejects.toThrow();
    expect(readdirSync(root)).toHaveLength(2); // one file per inserter, reused
    // Two inserts at once never share a file.
    await Promise.all([inserter.insert([one]), inserter.insert([three])]);
    expect(readdirSync(root)).toHaveLength(3);
    const [row] = await queryRows<{ n: string; distinct: string }>(store.client, 'SELECT toString(count()) AS n, toString(uniqExact(SpanId)) AS distinct FROM spans_native');
    expect(row).toEqual({ n: '8', distinct: '4' });
    inserter.close();
    missing.close();
    expect(readdirSync(root)).toEqual([]);
  });

  it('remove the spool files a killed process left, and only those', async () => {
    const root = tempDataDir('bw-spool-');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const orphan = join(root, `breakwater-spool-${dead}-abc123-7.native`);
    const live = join(root, `breakwater-spool-${process.pid}-def456-1.native`);
    const unrelated = join(root, 'breakwater-spool-notes.txt');
    for (const path of [orphan, live, unrelated]) writeFileSync(path, 'x');
    const inserter = blockInserterFor(store.client, 'spans_native', root);
    await inserter.insert([encodeSpanBlock([span()], [0])]);
    inserter.close();
    expect(readdirSync(root).sort()).toEqual([live, unrelated].map((p) => p.slice(root.length + 1)).sort());
  });
});
