// The floors' inputs, made in a process of its own: the decode floors, and the storage floors'
// batches (Native blocks, JSONEachRow bodies, a one-row block) encoded from the bench's payloads.
// Not in the process under test: decoding and holding 32,000 spans there taught V8 that spans
// live long, and it then allocated every ingested span straight into the old generation (measured:
// scavenges of 20-40 ms and a full GC every few seconds during the ingest and decision phases
// after, against 2 ms and none without).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEntry, runChild } from './child.js';
import { handWrittenDecode, jsonBatches, nativeBatches, referenceDecodeFloor, storedSpans, type EncodedBatch } from './floors.js';
import { rawPayload } from './payloads.js';

export interface FloorInputsSpec {
  spansPerRequest: number;
  tenants: number;
  /** distinct payloads, cycled over */
  distinct: number;
  /** requests the storage batches hold */
  requests: number;
  batchRows: number;
  decodeSeconds: number;
  /** also make the JSONEachRow bodies */
  json: boolean;
}

export interface FloorInputs {
  /** spans/s */
  referenceDecode: number;
  /** spans/s */
  handWrittenDecode: number;
  native: EncodedBatch[];
  json: EncodedBatch[];
  /** a Native block of one row */
  oneRow: Buffer;
}

interface Written {
  referenceDecode: number;
  handWrittenDecode: number;
  native: Array<{ file: string; rows: number }>;
  json: Array<{ file: string; rows: number }>;
  oneRow: string;
}

function make(spec: FloorInputsSpec, dir: string): Written {
  const payloads = Array.from({ length: spec.distinct }, (_, p) => rawPayload({ encoding: 'protobuf', spansPerRequest: spec.spansPerRequest, tenants: spec.tenants }, p));
  const referenceDecode = referenceDecodeFloor(payloads, spec.spansPerRequest, spec.decodeSeconds);
  const handWritten = handWrittenDecode(payloads, spec.spansPerRequest, spec.decodeSeconds);
  const requests = storedSpans(payloads);
  const write = (name: string, batches: EncodedBatch[]) =>
    batches.map((batch, i) => {
      const file = join(dir, `${name}-${i}.bin`);
      writeFileSync(file, batch.body);
      return { file, rows: batch.rows };
    });
  const oneRow = join(dir, 'one-row.bin');
  writeFileSync(oneRow, nativeBatches([requests[0]!.slice(0, 1)], 1, 1)[0]!.body);
  return {
    referenceDecode,
    handWrittenDecode: handWritten,
    native: write('native', nativeBatches(requests, spec.requests, spec.batchRows)),
    json: spec.json ? write('json', jsonBatches(requests, spec.requests, spec.batchRows)) : [],
    oneRow,
  };
}

/** Runs this file as a child process and reads what it made (the files are removed). */
export async function floorInputsFromChild(spec: FloorInputsSpec): Promise<FloorInputs> {
  const dir = mkdtempSync(join(tmpdir(), 'bw-floor-inputs-'));
  try {
    const written = await runChild<Written>('bench/floor-inputs.ts', [JSON.stringify(spec), dir]);
    const read = (files: Written['native']) => files.map(({ file, rows }) => ({ body: readFileSync(file), rows }));
    return {
      referenceDecode: written.referenceDecode,
      handWrittenDecode: written.handWrittenDecode,
      native: read(written.native),
      json: read(written.json),
      oneRow: readFileSync(written.oneRow),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// As a child process: make the inputs into the given directory, print where they are as JSON.
if (isEntry(import.meta.url)) {
  process.stdout.write(`${JSON.stringify(make(JSON.parse(process.argv[2]!) as FloorInputsSpec, process.argv[3]!))}\n`);
}
