import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { applyRetention } from '../../src/storage/migrations.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

let service: Service;

beforeAll(async () => {
  service = await startTestService({ dataDir: tempDataDir(), queueMaxSpans: 10, tenantQueueSharePercent: 100, batchMaxDelayMs: 5 });
});

afterAll(async () => {
  await service?.stop();
});

async function count(where: string, params: Record<string, unknown> = {}): Promise<number> {
  const rows = await queryRows<{ n: string }>(service.store.client, `SELECT toString(count()) AS n FROM spans WHERE ${where}`, params);
  return Number(rows[0]?.n);
}

describe('backpressure', () => {
  it('answers 503 with Retry-After when a request does not fit the write queue, storing none of it', async () => {
    const res = await postSpans(service.otlpUrl, runSteps('bp', 'big', Array.from({ length: 11 }, () => ({ tool: 'x' }))));
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    const small = await postSpans(service.otlpUrl, runSteps('bp', 'small', Array.from({ length: 10 }, () => ({ tool: 'x' }))));
    expect(small.status).toBe(200);
    expect(await count("TenantId = 'bp' AND RunId = 'big'")).toBe(0);
    expect(await count("TenantId = 'bp' AND RunId = 'small'")).toBe(10);
    const metrics = await (await fetch(`${service.otlpUrl}/metrics`)).text();
    expect(metrics).toMatch(/breakwater_spans_rejected_total\{reason="queue_full"\} 11/);
    expect(metrics).toMatch(/breakwater_otlp_requests_total\{status="503"\} 1/);
  });
});

describe('retention', () => {
  it('sets the spans TTL from the retention setting, and only when it changes', async () => {
    await applyRetention(service.store.client, 7);
    const ttl = async () =>
      (await queryRows<{ q: string }>(service.store.client, "SELECT create_table_query AS q FROM system.tables WHERE database = currentDatabase() AND name = 'spans'"))[0]!.q;
    expect(await ttl()).toMatch(/TTL toDateTime\(StartTime\) \+ toIntervalDay\(7\)/);
    await applyRetention(service.store.client, 7);
    await expect(applyRetention(service.store.client, 0)).rejects.toThrow(/positive integer/);
    await applyRetention(service.store.client, 30);
    expect(await ttl()).toMatch(/toIntervalDay\(30\)/);
  });
});
