// /metrics answers 500 when building the metrics text fails, and the server keeps serving.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Gauge } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/app/service.js';
import { tempDataDir, testConfig } from '../helpers/service.js';

let service: Service;
const logged: { msg: string; error?: string }[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logged.push(JSON.parse(line) as { msg: string; error?: string });
      done();
    },
  });
  service = await startService(testConfig({ dataDir: tempDataDir() }), pino({ level: 'error' }, sink));
});

afterAll(async () => {
  await service?.stop();
});

const get = (path: string) => fetch(`${service.otlpUrl}${path}`, { signal: AbortSignal.timeout(5_000) });

describe('/metrics', () => {
  it('answers 500 when a collector throws, and serves again once it no longer does', async () => {
    expect((await get('/metrics')).status).toBe(200);
    new Gauge({
      name: 'broken_collector',
      help: 'throws on collection',
      registers: [service.metrics.registry],
      collect() {
        throw new Error('collector broke');
      },
    });
    const res = await get('/metrics');
    expect(res.status).toBe(500);
    expect(await res.text()).toMatch(/metrics/);
    expect(logged.some((l) => l.error === 'collector broke')).toBe(true);
    expect((await get('/healthz')).status).toBe(200);

    service.metrics.registry.removeSingleMetric('broken_collector');
    const again = await get('/metrics');
    expect(again.status).toBe(200);
    expect(await again.text()).toContain('breakwater_spans_received_total');
  });

  it('answers 500 when the registry throws before it returns', async () => {
    const registry = service.metrics.registry;
    const metrics = registry.metrics.bind(registry);
    registry.metrics = () => {
      throw new Error('registry broke');
    };
    try {
      expect((await get('/metrics')).status).toBe(500);
    } finally {
      registry.metrics = metrics;
    }
    expect((await get('/metrics')).status).toBe(200);
  });
});
