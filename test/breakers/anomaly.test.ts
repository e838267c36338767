import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnomalyDetector, anomalyBound } from '../../src/breakers/anomaly.js';
import { loadBaselines, recomputeBaselines } from '../../src/jobs/anomaly-baselines.js';
import { openStore, type Store } from '../../src/storage/clickhouse.js';
import { migrate } from '../../src/storage/migrations.js';
import { tempDataDir } from '../helpers/service.js';

describe('AnomalyDetector (robust z-score against the tenant baseline)', () => {
  const detector = new AnomalyDetector({ zThreshold: 6, minSamples: 30 });
  detector.setBaselines(
    new Map([
      ['steady', { tokenVelocity60s: { median: 100, mad: 10, samples: 500 } }],
      ['new', { tokenVelocity60s: { median: 100, mad: 10, samples: 29 } }],
      ['flat', { toolCallsPerMinute: { median: 20, mad: 0, samples: 500 } }],
    ]),
  );

  it('warns above median + z × 1.4826 × MAD, not at or below it', () => {
    const bound = anomalyBound({ median: 100, mad: 10, samples: 500 }, 6);
    expect(bound).toBeCloseTo(100 + 6 * 1.4826 * 10, 9);
    expect(detector.check('steady', { tokenVelocity60s: bound })).toEqual([]);
    expect(detector.check('steady', { tokenVelocity60s: bound + 0.01 })).toEqual([{ metric: 'anomaly:tokenVelocity60s', threshold: bound, observed: bound + 0.01 }]);
  });

  it('needs enough history before trusting a baseline', () => {
    expect(detector.check('new', { tokenVelocity60s: 10_000 })).toEqual([]);
  });

  it('floors a zero MAD so a perfectly steady tenant is not alarmed by a tiny change', () => {
    expect(detector.check('flat', { toolCallsPerMinute: 21 })).toEqual([]);
    expect(detector.check('flat', { toolCallsPerMinute: 40 })).toHaveLength(1);
  });

  it('knows nothing about a tenant without a baseline', () => {
    expect(detector.check('stranger', { tokenVelocity60s: 1e9 })).toEqual([]);
  });
});

describe('the baseline job computes medians and MADs from the rollup', () => {
  let store: Store;

  beforeAll(async () => {
    store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir: tempDataDir() });
    await migrate(store.client);
    // 120 past minutes; minute m has 600 + 60 × (m % 5) tokens over 3 chat spans, and m % 4 tool calls.
    await store.client.command({
      query: `INSERT INTO spans (TenantId, RunId, TraceId, SpanId, StartTime, EndTime, Operation, InputTokens, OutputTokens)
              SELECT 'job-tenant', 'r', 'ab', lpad(toString(number), 16, '0'),
                     toStartOfMinute(now()) - toIntervalMinute(intDiv(number, 10) + 1) + toIntervalSecond(number % 10),
                     toStartOfMinute(now()) - toIntervalMinute(intDiv(number, 10) + 1) + toIntervalSecond(number % 10),
                     if(number % 10 < 3, 'chat', if(number % 10 - 3 < intDiv(number, 10) % 4, 'execute_tool', 'other')),
                     if(number % 10 < 3, toUInt32((600 + 60 * (intDiv(number, 10) % 5)) / 3), 0), 0
              FROM numbers(1200)`,
    });
  });

  afterAll(async () => {
    await store?.close();
  });

  it('stores per-tenant baselines and hands them to the detector; a restart reloads them', async () => {
    const detector = new AnomalyDetector();
    expect(await recomputeBaselines(store.client, detector)).toBe(1);
    // Velocities per minute are (600 + 60k)/60 for k = 0..4 equally often: median 12, MAD 1.
    expect(detector.baseline('job-tenant', 'tokenVelocity60s')).toEqual({ median: 12, mad: 1, samples: 120 });
    expect(detector.baseline('job-tenant', 'modelCallsPerMinute')).toMatchObject({ median: 3, mad: 0 });
    const tools = detector.baseline('job-tenant', 'toolCallsPerMinute')!;
    expect(tools.median).toBeGreaterThanOrEqual(1);
    expect(tools.median).toBeLessThanOrEqual(2);

    const reloaded = new AnomalyDetector();
    expect(await loadBaselines(store.client, reloaded)).toBe(1);
    expect(reloaded.baseline('job-tenant', 'tokenVelocity60s')).toEqual({ median: 12, mad: 1, samples: 120 });
    expect(reloaded.check('job-tenant', { tokenVelocity60s: 100 })).toHaveLength(1);
    expect(reloaded.check('job-tenant', { tokenVelocity60s: 14 })).toEqual([]);
  });
});
