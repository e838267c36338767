import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/storage/clickhouse.js';
import { startChildService, type ChildService } from '../helpers/child-service.js';
import { recordingTracer } from '../helpers/otel.js';
import { tempDataDir } from '../helpers/service.js';

// A span acknowledged with 200 is in ClickHouse even if the process is SIGKILLed right after.
// Senders behave like the OTLP exporter: a request that fails (connection refused or reset, 5xx)
// is retried, unchanged, until it is acknowledged. The dedup rule this checks: delivery is
// at-least-once; a span is stored twice only when its request was retried after an attempt that
// got no 200 (the process died between the commit and the answer). Readers that need exact
// counts dedup by (TraceId, SpanId).

const KILLS = 3;
const WORKERS = 4;

interface Batch {
  body: Uint8Array<ArrayBuffer>;
  spanIds: string[];
  attempts: number;
}

function makeBatch(worker: number, n: number): Batch {
  const { tracer, finished } = recordingTracer({ 'tenant.id': `durable-${worker}` });
  for (let i = 0; i < 20; i++) tracer.startSpan(`step ${n}.${i}`, { attributes: { 'gen_ai.operation.name': 'execute_tool', 'agent.run.id': `w${worker}` } }).end();
  const spans = finished();
  return { body: new Uint8Array(ProtobufTraceSerializer.serializeRequest(spans)!), spanIds: spans.map((s) => s.spanContext().spanId), attempts: 0 };
}

describe('durability under SIGKILL', () => {
  // With --ingest-wal the 200 comes before the commit: the spans acknowledged and not yet in
  // ClickHouse at the kill must be replayed from the write-ahead file at the restart.
  it.each([
    ['answered after the ClickHouse commit', ['--ingest-wal', 'false']],
    ['answered from the ingest write-ahead file', ['--ingest-wal', 'true', '--batch-max-delay-ms', '200']],
  ])('keeps every acknowledged span across repeated kills, duplicating only retried requests (%s)', async (_, mode) => {
    const dataDir = tempDataDir();
    const args = ['--data-dir', dataDir, '--batch-max-delay-ms', '10', ...mode];
    let server: ChildService = await startChildService(args);
    const acked = new Set<string>();
    const retried = new Set<string>();
    let running = true;

    const worker = async (w: number) => {
      for (let n = 0; running; n++) {
        const batch = makeBatch(w, n);
        for (;;) {
          batch.attempts++;
          try {
            const res = await fetch(`${server.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: batch.body });
            await res.arrayBuffer();
            if (res.status === 200) break;
          } catch {
            // connection refused or reset: the server is down; retry below
          }
          if (batch.attempts > 1) for (const id of batch.spanIds) retried.add(id);
          await new Promise((r) => setTimeout(r, 50));
          if (!running && batch.attempts > 200) return;
        }
        for (const id of batch.spanIds) acked.add(id);
        if (batch.attempts > 1) for (const id of batch.spanIds) retried.add(id);
      }
    };
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));

    for (let kill = 0; kill < KILLS; kill++) {
      await new Promise((r) => setTimeout(r, 400 + Math.floor(Math.random() * 600)));
      server.process.kill('SIGKILL');
      await server.exited;
      server = await startChildService(args);
    }
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await Promise.all(workers);
    server.process.kill('SIGTERM');
    expect(await server.exited).toBe(0);

    expect(acked.size).toBeGreaterThan(100);
    const store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir });
    try {
      const result = await store.client.query({ query: "SELECT SpanId, count() AS n FROM spans WHERE TenantId LIKE 'durable-%' GROUP BY SpanId", format: 'JSONEachRow' });
      const stored = new Map((await result.json<{ SpanId: string; n: number | string }>()).map((r) => [r.SpanId, Number(r.n)]));
      const lost = [...acked].filter((id) => !stored.has(id));
      expect(lost, 'acknowledged spans missing after SIGKILL').toEqual([]);
      const duplicated = [...stored].filter(([, n]) => n > 1).map(([id]) => id);
      expect(duplicated.filter((id) => !retried.has(id)), 'duplicates of requests that were never retried').toEqual([]);
    } finally {
      await store.close();
    }
  }, 120_000);
});
