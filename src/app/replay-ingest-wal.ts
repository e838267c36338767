import type { ClickHouseClient } from '@clickhouse/client';
import type { AttributeLimits } from '../codecs/attribute-limits.js';
import { decodeTraceRequestJson } from '../codecs/decode-json.js';
import { decodeTraceRequestProtobuf } from '../codecs/decode-protobuf.js';
import type { AgentSpan } from '../contracts/agent-span.js';
import { queryRows } from '../storage/clickhouse.js';
import type { IngestWal, ReplayedIngest } from '../storage/ingest-wal.js';
import type { IngestPipeline } from './pipeline.js';

export interface ReplayOutcome {
  records: number;
  /** spans written now */
  spans: number;
  /** spans ClickHouse held already (committed before the previous process stopped) */
  alreadyStored: number;
  /** records that no longer decode (a damaged file): dropped */
  undecodable: number;
}

/**
 * Writes what the previous process acknowledged from the write-ahead file and did not commit.
 * Idempotent: spans ClickHouse already holds (by trace and span id) are skipped, so a crash
 * between an insert and its record's release, or during this replay, stores nothing twice.
 * Records go in chunks of at most `chunkSpans` spans, one lookup of stored spans per chunk.
 */
export async function replayIngestWal(
  records: readonly ReplayedIngest[],
  pipeline: IngestPipeline,
  wal: IngestWal,
  client: ClickHouseClient,
  options: { attributeLimits?: AttributeLimits; chunkSpans: number },
): Promise<ReplayOutcome> {
  const outcome: ReplayOutcome = { records: records.length, spans: 0, alreadyStored: 0, undecodable: 0 };
  let chunk: Array<{ id: number; spans: AgentSpan[] }> = [];
  let chunkSpans = 0;
  const flush = async () => {
    const stored = await storedKeys(client, chunk.flatMap((r) => r.spans.map((s) => s.spanId)));
    const fresh = chunk.map((r) => r.spans.filter((s) => !stored.has(`${s.traceId}/${s.spanId}`)));
    for (let i = 0; i < chunk.length; i++) {
      outcome.spans += fresh[i]!.length;
      outcome.alreadyStored += chunk[i]!.spans.length - fresh[i]!.length;
    }
    await Promise.all(fresh.map((spans) => pipeline.replay(spans)));
    for (const r of chunk) wal.committed(r.id);
    chunk = [];
    chunkSpans = 0;
  };
  for (const { id, record } of records) {
    let spans: AgentSpan[];
    try {
      const request = record.encoding === 'protobuf' ? decodeTraceRequestProtobuf(record.body, options.attributeLimits) : decodeTraceRequestJson(record.body.toString('utf8'), options.attributeLimits);
      spans = pipeline.replayable(record, request);
    } catch {
      outcome.undecodable++;
      spans = [];
    }
    if (chunkSpans > 0 && chunkSpans + spans.length > options.chunkSpans) await flush();
    chunk.push({ id, spans });
    chunkSpans += spans.length;
  }
  if (chunk.length > 0) await flush();
  return outcome;
}

/** "traceId/spanId" of the spans among `spanIds` that ClickHouse holds. */
async function storedKeys(client: ClickHouseClient, spanIds: readonly string[]): Promise<Set<string>> {
  if (spanIds.length === 0) return new Set();
  const rows = await queryRows<{ TraceId: string; SpanId: string }>(client, 'SELECT DISTINCT TraceId, SpanId FROM spans WHERE SpanId IN {ids:Array(String)}', { ids: [...new Set(spanIds)] });
  return new Set(rows.map((r) => `${r.TraceId}/${r.SpanId}`));
}
