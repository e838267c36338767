// The floors every end-to-end figure is read against, measured in the same run on the same
// payloads: what the HTTP layer alone, a generic protobuf decoder alone, and ClickHouse alone
// can do on this machine.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { AgentSpan } from '../src/contracts/agent-span.js';
import { decodeTraceRequestProtobuf } from '../src/codecs/decode-protobuf.js';
import { normalizeRequest } from '../src/normalize/normalize.js';
import { referenceDecode } from '../src/codecs/otlp-proto-schema.js';
import { SpanBlockEncoder } from '../src/storage/span-block.js';
import { blockInserterFor } from '../src/storage/span-insert.js';
import { spanRow } from '../src/storage/span-rows.js';

/** An HTTP server that reads each body whole and answers 200 with an empty OTLP response. */
export async function startTransportFloor(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      Buffer.concat(chunks);
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf', 'Content-Length': 0 });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Spans per second `decode` gets through on the main thread, cycling over the payloads. */
export function decodeRate(payloads: readonly Buffer[], spansPerPayload: number, decode: (b: Buffer) => unknown, seconds: number): number {
  for (let i = 0; i < Math.min(payloads.length, 16); i++) decode(payloads[i]!); // warm-up
  const started = performance.now();
  let n = 0;
  while (performance.now() - started < seconds * 1000) decode(payloads[n++ % payloads.length]!);
  return (n * spansPerPayload) / ((performance.now() - started) / 1000);
}

export const referenceDecodeFloor = (payloads: readonly Buffer[], spans: number, seconds: number) => decodeRate(payloads, spans, referenceDecode, seconds);
export const handWrittenDecode = (payloads: readonly Buffer[], spans: number, seconds: number) =>
  decodeRate(payloads, spans, decodeTraceRequestProtobuf, seconds);

/** The spans Breakwater would store for these protobuf payloads (one array per request). */
export function storedSpans(payloads: readonly Buffer[]): AgentSpan[][] {
  return payloads.map((p) => normalizeRequest(decodeTraceRequestProtobuf(p), { requireTenant: true }).spans);
}

export interface StorageRun {
  rows: number;
  seconds: number;
}

/** A Native block of `rows` rows, or a JSONEachRow body of `rows` lines. */
export interface EncodedBatch {
  body: Buffer;
  rows: number;
}

/**
 * The storage floor's batches: `totalRequests` requests (cycling over `requests`) as Native blocks
 * of up to `batchRows` rows, one block per insert as the writer sends them.
 */
export function nativeBatches(requests: readonly AgentSpan[][], totalRequests: number, batchRows: number): EncodedBatch[] {
  const batches: EncodedBatch[] = [];
  const encoder = new SpanBlockEncoder();
  for (let i = 0; i < totalRequests; i++) {
    const spans = requests[i % requests.length]!;
    if (encoder.rows > 0 && encoder.rows + spans.length > batchRows) batches.push({ rows: encoder.rows, body: encoder.finish() });
    encoder.add(spans, new Float64Array(spans.length));
  }
  if (encoder.rows > 0) batches.push({ rows: encoder.rows, body: encoder.finish() });
  return batches;
}

/** The same requests as JSONEachRow bodies of up to `batchRows` lines (the previous writer's format). */
export function jsonBatches(requests: readonly AgentSpan[][], totalRequests: number, batchRows: number): EncodedBatch[] {
  const batches: EncodedBatch[] = [];
  let lines: string[] = [];
  for (let i = 0; i < totalRequests; i++) {
    for (const span of requests[i % requests.length]!) lines.push(JSON.stringify(spanRow(span, 0)));
    if (lines.length >= batchRows || i === totalRequests - 1) {
      batches.push({ rows: lines.length, body: Buffer.from(lines.join('\n')) });
      lines = [];
    }
  }
  return batches;
}

/**
 * Storage floor: Native blocks encoded beforehand (in another process: see floor-inputs.ts),
 * inserted straight into the same table of the same ClickHouse, one insert after another, for at
 * least `minSeconds` (the batches are sent again as needed). Sustained rather than a burst: a short
 * burst leaves its merges for later, while ingest running for seconds pays for the merges it causes.
 */
export async function nativeStorageFloor(client: ClickHouseClient, table: string, batches: readonly EncodedBatch[], minSeconds: number): Promise<StorageRun> {
  const inserter = blockInserterFor(client, table);
  try {
    let rows = 0;
    const started = performance.now();
    for (let i = 0; i === 0 || i % batches.length !== 0 || performance.now() - started < minSeconds * 1000; i++) {
      const batch = batches[i % batches.length]!;
      await inserter.insert([batch.body]);
      rows += batch.rows;
    }
    return { rows, seconds: (performance.now() - started) / 1000 };
  } finally {
    inserter.close();
  }
}

/**
 * What every insert costs whatever its size: the median time of `times` inserts of `block` (one
 * row) into the table, as the writer sends them. Bigger batches spread it over more rows.
 */
export async function singleRowInsertMs(client: ClickHouseClient, table: string, block: Buffer, times: number): Promise<number> {
  const inserter = blockInserterFor(client, table);
  try {
    const ms: number[] = [];
    for (let i = 0; i < times; i++) {
      const started = performance.now();
      await inserter.insert([block]);
      ms.push(performance.now() - started);
    }
    return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
  } finally {
    inserter.close();
  }
}

/** The previous writer's path, for comparison: JSONEachRow bodies through the client, one insert at a time. */
export async function jsonStorageRate(client: ClickHouseClient, table: string, batches: readonly EncodedBatch[]): Promise<StorageRun> {
  let rows = 0;
  const started = performance.now();
  for (const batch of batches) {
    const result = await client.exec({ query: `INSERT INTO ${table} FORMAT JSONEachRow`, values: Readable.from([batch.body]) });
    result.stream.resume();
    rows += batch.rows;
  }
  return { rows, seconds: (performance.now() - started) / 1000 };
}
