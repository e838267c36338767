import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { IngestWal } from '../../src/storage/ingest-wal.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

// One data dir for the file: chdb binds one per process; services are started and stopped on it in turn.
const dataDir = tempDataDir();
const walDir = join(dataDir, 'ingest-wal');
let service: Service | undefined;

afterAll(async () => {
  await service?.stop();
});

async function count(runId: string): Promise<number> {
  const rows = await queryRows<{ n: string }>(service!.store.client, 'SELECT toString(count()) AS n FROM spans WHERE RunId = {runId:String}', { runId });
  return Number(rows[0]?.n);
}

async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) if (await check()) return;
}

const steps = (n: number) => Array.from({ length: n }, () => ({ tool: 'search' }));

describe('ingest write-ahead file', () => {
  it('replays acknowledged records at start, skipping spans already stored and a torn last record', async () => {
    service = await startTestService({ dataDir, ingestWal: true });
    const storedBody = runSteps('wal', 'stored', steps(5));
    expect((await postSpans(service.otlpUrl, storedBody)).status).toBe(200);
    await eventually(async () => (await count('stored')) === 5);
    await service.stop();
    service = undefined;

    // As a process killed after the insert of `stored` but before its record's release, and
    // before the insert of `pending`, in the middle of writing a third record, leaves the file.
    const { wal } = IngestWal.open(walDir, { maxBytes: 1 << 20 });
    wal.append({ encoding: 'protobuf', body: Buffer.from(storedBody) });
    wal.append({ encoding: 'protobuf', body: Buffer.from(runSteps('wal', 'pending', steps(7))) });
    wal.close();
    const segment = readdirSync(walDir).sort().at(-1)!;
    appendFileSync(join(walDir, segment), '{"e":"p","b":"CgYKBAoC');

    service = await startTestService({ dataDir, ingestWal: true });
    expect(await count('pending')).toBe(7);
    expect(await count('stored')).toBe(5);
    await service.stop();
    service = undefined;
    // Replayed and committed: nothing is left to replay (a third start stores nothing twice).
    expect(IngestWal.open(walDir, { maxBytes: 1 << 20 }).wal.pendingRecords).toBe(0);
  });

  it('answers 503 with Retry-After while the file holds its bound of uncommitted requests', async () => {
    service = await startTestService({ dataDir, ingestWal: true, ingestWalMaxBytes: 1024, batchMaxDelayMs: 1500 });
    const first = await postSpans(service.otlpUrl, runSteps('wal', 'first', steps(20)));
    expect(first.status).toBe(200);
    const refused = await postSpans(service.otlpUrl, runSteps('wal', 'second', steps(20)));
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await refused.text()).toMatch(/write-ahead file full/);
    await eventually(async () => (await count('first')) === 20);
    expect(await count('first')).toBe(20);
    const again = await postSpans(service.otlpUrl, runSteps('wal', 'second', steps(20)));
    expect(again.status).toBe(200);
    expect(await count('second')).toBe(0); // acknowledged before the commit, which follows the batch delay
    await eventually(async () => (await count('second')) === 20);
    expect(await count('second')).toBe(20);
  });

  it('answers after the commit, as without the file, once the write queue holds a batch', async () => {
    await service?.stop();
    service = await startTestService({ dataDir, ingestWal: true, batchMaxSpans: 100, batchMaxDelayMs: 3000 });
    // 60 rows fit under the 100-row batch: answered from the file while the batch waits out its delay.
    expect((await postSpans(service.otlpUrl, runSteps('wal', 'early', steps(60)))).status).toBe(200);
    expect(await count('early')).toBe(0);
    // 60 more would pass the batch: the answer waits for the insert, pacing senders storage cannot keep up with.
    expect((await postSpans(service.otlpUrl, runSteps('wal', 'paced', steps(60)))).status).toBe(200);
    expect(service.writer.queuedRows).toBe(0);
    expect(await count('paced')).toBe(60);
  });
});
