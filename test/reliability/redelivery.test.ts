import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

// An OTLP exporter retries a request answered 503 (and one whose answer it never got), unchanged.
// The decision path and cost attribution count its spans once however often it arrives.

const dir = tempDataDir('bw-redelivery-');
let service: Service;

beforeAll(async () => {
  const policyFile = writePolicy(dir, 'prices:\n  gpt-4o-mini: { input: 0.15, output: 0.6 }\n');
  service = await startTestService({ dataDir: dir, policyFile });
});

afterAll(async () => {
  await service?.stop();
});

async function stored(runId: string): Promise<number> {
  const [row] = await queryRows<{ n: string }>(service.store.client, 'SELECT toString(count()) AS n FROM spans WHERE RunId = {r:String}', { r: runId });
  return Number(row!.n);
}

async function redelivered(): Promise<string> {
  const text = await (await fetch(`${service.otlpUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('breakwater_spans_redelivered_total{'))
    .join('\n');
}

describe('a retried delivery', () => {
  it('is counted once in the windows and the cost after a 503, and stored once', async () => {
    const body = runSteps('retrying', 'r-503', [
      ...Array.from({ length: 8 }, () => ({ tool: 'search' })),
      ...Array.from({ length: 4 }, () => ({ model: 'gpt-4o-mini', inputTokens: 1_000, outputTokens: 500 })),
    ]);
    // The spans table is unavailable: ClickHouse refuses the insert and the request gets 503.
    await service.store.client.command({ query: 'DETACH TABLE spans' });
    let first: Response;
    try {
      first = await postSpans(service.otlpUrl, body);
    } finally {
      await service.store.client.command({ query: 'ATTACH TABLE spans' });
    }
    expect(first.status).toBe(503);
    const seenOnce = service.core.windows.runMetrics('retrying', 'r-503')!;
    expect(seenOnce.stepCount).toBe(12);

    const retry = await postSpans(service.otlpUrl, body);
    expect(retry.status).toBe(200);
    const after = service.core.windows.runMetrics('retrying', 'r-503')!;
    expect(after.stepCount).toBe(12);
    // 4 calls of 1,000 input and 500 output tokens at $0.15 / $0.60 per million.
    expect(after.costUsd).toBeCloseTo(4 * (1_000 * 0.15 + 500 * 0.6) / 1e6, 12);
    expect(await stored('r-503')).toBe(12);
    expect(await redelivered()).toContain('breakwater_spans_redelivered_total{skipped="observers"} 12');
  });

  it('is answered as stored, without storing it again, when the first delivery committed', async () => {
    const body = runSteps('retrying', 'r-acked', Array.from({ length: 5 }, () => ({ tool: 'search' })));
    expect((await postSpans(service.otlpUrl, body)).status).toBe(200);
    // The exporter never got that answer (a timeout) and sends the request again.
    const again = await postSpans(service.otlpUrl, body);
    expect(again.status).toBe(200);
    expect(service.core.windows.runMetrics('retrying', 'r-acked')!.stepCount).toBe(5);
    expect(await stored('r-acked')).toBe(5);
    expect(await redelivered()).toContain('breakwater_spans_redelivered_total{skipped="storage"} 5');
  });

  it('still counts new spans of the same run', async () => {
    const more = runSteps('retrying', 'r-acked', Array.from({ length: 3 }, () => ({ tool: 'search' })));
    expect((await postSpans(service.otlpUrl, more)).status).toBe(200);
    expect(service.core.windows.runMetrics('retrying', 'r-acked')!.stepCount).toBe(8);
    expect(await stored('r-acked')).toBe(8);
  });
});
