import { describe, expect, it } from 'vitest';
import { MAX_ENTRIES, RING_CALLS, TenantLatency } from '../../src/degradation/tenant-latency.js';
import { T0 } from './helpers.js';

describe('TenantLatency', () => {
  it('is the nearest-rank p95 of the calls of the last 60 s', () => {
    const latency = new TenantLatency();
    for (let i = 1; i <= 100; i++) latency.record('openai', 'gpt-4o', T0, i * 10);
    expect(latency.read('openai', 'gpt-4o', T0)).toEqual({ latencyP95Ms: 950, callsPerMinute: 100 });
    expect(latency.read('openai', 'gpt-4o-mini', T0)).toBeUndefined();
    expect(latency.read('openai', 'gpt-4o', T0 + 60_000)).toBeUndefined();
  });

  it('keeps the last calls of each entry and at most MAX_ENTRIES entries, the idlest going first', () => {
    const latency = new TenantLatency();
    // a slow burst still inside the 60 s, then RING_CALLS fast calls from 10 s on push it out
    for (let i = 0; i < 50; i++) latency.record('openai', 'gpt-4o', T0, 30_000);
    for (let i = 0; i < RING_CALLS; i++) latency.record('openai', 'gpt-4o', T0 + 10_000 + i * 100, 200);
    // a full ring covers 20 s of calls here: the rate is scaled to the minute
    expect(latency.read('openai', 'gpt-4o', T0 + 30_000)).toEqual({ latencyP95Ms: 200, callsPerMinute: RING_CALLS * 3 });
    for (let i = 0; i < MAX_ENTRIES + 4; i++) latency.record('vllm', `m${i}`, T0 + 31_000 + i, 100);
    expect(latency.size).toBe(MAX_ENTRIES);
    expect(latency.read('openai', 'gpt-4o', T0 + 40_000)).toBeUndefined();
    expect(latency.read('vllm', 'm3', T0 + 40_000)).toBeUndefined();
    expect(latency.read('vllm', 'm4', T0 + 40_000)).toEqual({ latencyP95Ms: 100, callsPerMinute: 1 });
  });
});
