import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { recordingTracer } from '../helpers/otel.js';
import { capturedLog, counterValue, refusalLines, startTestService, tempDataDir } from '../helpers/service.js';

// One tenant's spans never fail another's writes: what storage cannot keep is refused per span at
// the door, a batch ClickHouse refuses is retried without the request that caused it, and a burst
// fills its tenant's share of the write queue, not the queue.

const DAY = 86_400_000;
// chdb binds one data directory per process: the services of this file take turns on it.
const dataDir = tempDataDir('bw-isolation-');
let service: Service | undefined;

afterEach(async () => {
  await service?.stop();
  service = undefined;
});

/** Real OTLP bytes: `count` tool calls of one tenant starting at each of `starts` (epoch ms). */
function spansAt(tenant: string, starts: number[], encoding: 'protobuf' | 'json' = 'protobuf'): Uint8Array<ArrayBuffer> {
  const { tracer, finished } = recordingTracer({ 'tenant.id': tenant });
  for (const start of starts) {
    tracer.startSpan('tool', { startTime: new Date(start), attributes: { 'gen_ai.operation.name': 'execute_tool', 'agent.run.id': `${tenant}-run` } }).end(new Date(start + 5));
  }
  const spans = finished();
  return new Uint8Array(encoding === 'json' ? JsonTraceSerializer.serializeRequest(spans)! : ProtobufTraceSerializer.serializeRequest(spans)!);
}

function post(body: Uint8Array<ArrayBuffer>, encoding: 'protobuf' | 'json' = 'protobuf'): Promise<Response> {
  const type = encoding === 'json' ? 'application/json' : 'application/x-protobuf';
  return fetch(`${service!.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': type }, body });
}

async function stored(tenant: string): Promise<number> {
  const [row] = await queryRows<{ n: string }>(service!.store.client, 'SELECT toString(count()) AS n FROM spans WHERE TenantId = {t:String}', { t: tenant });
  return Number(row!.n);
}

describe('storage isolation between tenants', () => {
  it('refuses, in partial_success, spans outside the retention window or too far ahead, and stores the rest', async () => {
    service = await startTestService({ dataDir, retentionDays: 30 });
    const now = Date.now();
    // 0, and 2106 and 2150 (past toDateTime's range, so the TTL would delete them at once), were
    // answered 200 before and then lost.
    const y2106 = Date.UTC(2106, 2, 1);
    const y2150 = Date.UTC(2150, 0, 1);
    const res = await post(spansAt('window', [now - 40 * DAY, now - 29 * DAY, now, now + 5 * 60_000, now + 3 * 3_600_000, 0, y2106, y2150], 'json'), 'json');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { partialSuccess?: { rejectedSpans?: number | string; errorMessage?: string } };
    expect(Number(body.partialSuccess?.rejectedSpans)).toBe(5);
    expect(body.partialSuccess?.errorMessage).toContain('2 span(s) rejected: start time older than the 30-day retention window');
    expect(body.partialSuccess?.errorMessage).toContain('3 span(s) rejected: start time more than 60 min ahead of the server clock');
    expect(await stored('window')).toBe(3);
  });

  it('answers every normal tenant 200 while one tenant sends spans on 150 different days', async () => {
    // A long retention admits the old days at the door: ClickHouse itself refuses the insert that
    // holds them (over 100 partitions), and only the request holding them may get that refusal.
    service = await startTestService({ dataDir, retentionDays: 400, batchMaxDelayMs: 200 });
    const now = Date.now();
    const hostileDays = Array.from({ length: 150 }, (_, d) => now - (d + 1) * DAY);
    const normal = Array.from({ length: 20 }, (_, t) => Array.from({ length: 5 }, () => post(spansAt(`normal-${t}`, [now, now - 1000]))));
    const hostile = post(spansAt('many-days', hostileDays));
    const answers = await Promise.all(normal.flat());
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s !== 200), 'normal requests refused').toEqual([]);
    const refused = await hostile;
    expect(refused.status).toBe(503);
    // The protobuf google.rpc.Status carries the message as plain UTF-8 bytes.
    expect(await refused.text()).toContain('storage refused these spans: Too many partitions');
    expect(await stored('many-days')).toBe(0);
    for (let t = 0; t < 20; t++) expect(await stored(`normal-${t}`)).toBe(10);
  });

  it("gives 429 to the tenant filling its share of the write queue, and room to the others", async () => {
    // 25 % of a 400-span queue is 100 spans a tenant; a long batch delay keeps them queued.
    const { logger, lines } = capturedLog();
    service = await startTestService({ dataDir, queueMaxSpans: 400, tenantQueueSharePercent: 25, batchMaxDelayMs: 500, batchMaxSpans: 10_000 }, logger);
    const now = Date.now();
    const burst = (tenant: string) => spansAt(tenant, Array.from({ length: 40 }, (_, i) => now - i));
    const first = [post(burst('bursting')), post(burst('bursting'))];
    await new Promise((r) => setTimeout(r, 50)); // admitted, waiting for their batch
    const third = await post(burst('bursting'));
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('1');
    expect((await post(burst('bursting'))).status).toBe(429);
    expect(await counterValue(service, 'breakwater_otlp_requests_refused_total', { reason: 'tenant_queue_share' })).toBe(2);
    expect(refusalLines(lines, 'tenant_queue_share')).toEqual([expect.objectContaining({ tenantId: 'bursting', requests: 1, spans: 40, held: 80 })]);
    const others = await Promise.all([post(burst('calm-1')), post(burst('calm-2')), post(burst('calm-3'))]);
    expect(others.map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
    // The share is given back with the commit.
    expect((await post(burst('bursting'))).status).toBe(200);
    expect(await stored('bursting')).toBe(120);
  });
});
