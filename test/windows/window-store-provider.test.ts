import { describe, expect, it } from 'vitest';
import { LATENCY_RELATIVE_ERROR } from '../../src/windows/latency-sketch.js';
import { makeStore, span, T0 } from './helpers.js';

const opts = { providerErrorRatio: { minCalls: 2, lastN: 10 } };

describe('WindowStore provider and model metrics', () => {
  it('counts model calls per minute and their error ratio, per provider and per model', () => {
    const { store, clock } = makeStore(opts);
    store.record(span({ provider: 'openai', requestModel: 'gpt-4o', httpStatusCode: 503, isError: true }));
    expect(store.providerMetrics('openai')!.errorRatio).toBe(0); // below minCalls
    store.record(span({ provider: 'openai', requestModel: 'gpt-4o', responseModel: 'gpt-4o-mini' }));
    store.record(span({ provider: 'openai', requestModel: 'gpt-4o' }));
    store.record(span({ provider: 'openai', operation: 'execute_tool' })); // not a model call
    store.record(span({ provider: 'anthropic', requestModel: 'claude' }));
    expect(store.providerMetrics('openai')).toMatchObject({ callsPerMinute: 3, errorRatio: 1 / 3 });
    expect(store.modelMetrics('openai', 'gpt-4o')).toMatchObject({ callsPerMinute: 2, errorRatio: 0.5 });
    expect(store.modelMetrics('openai', 'gpt-4o-mini')).toMatchObject({ callsPerMinute: 1, errorRatio: 0 });
    expect(store.providerMetrics('anthropic')!.callsPerMinute).toBe(1);
    expect(store.providerMetrics('nope')).toBeUndefined();
    expect(store.modelMetrics('openai', 'nope')).toBeUndefined();
    expect([...store.providers()].sort()).toEqual(['anthropic', 'openai']);
    clock.advance(60_000);
    expect(store.providerMetrics('openai')!.callsPerMinute).toBe(0);
  });

  it('latency p50 / p95 from model-call durations', () => {
    const { store } = makeStore(opts);
    for (let i = 1; i <= 100; i++) {
      store.record(span({ provider: 'openai', requestModel: 'gpt-4o', durationMs: i * 10 }));
    }
    const m = store.modelMetrics('openai', 'gpt-4o')!;
    const within = (got: number, exact: number) =>
      expect(Math.abs(got - exact) / exact).toBeLessThanOrEqual(LATENCY_RELATIVE_ERROR + 1e-9);
    within(m.latencyP50Ms, 500);
    within(m.latencyP95Ms, 950);
    within(store.providerMetrics('openai')!.latencyP95Ms, 950);
  });

  it('leaves late spans out of provider windows', () => {
    const { store } = makeStore(opts);
    store.record(span({ provider: 'openai', requestModel: 'm', endMs: T0 - 60_000 }));
    expect(store.providerMetrics('openai')!.callsPerMinute).toBe(0);
    expect(store.providerMetrics('openai')!.latencyP50Ms).toBe(0);
  });

  it('caps the number of model windows, evicting the least recently used', () => {
    const { store, evicted } = makeStore({ ...opts, maxModels: 2 });
    store.record(span({ provider: 'p', requestModel: 'a' }));
    store.record(span({ provider: 'p', requestModel: 'b' }));
    store.record(span({ provider: 'p', requestModel: 'a' }));
    store.record(span({ provider: 'p', requestModel: 'c' }));
    expect([...store.models()].map((m) => m.model).sort()).toEqual(['a', 'c']);
    expect(evicted).toEqual([{ kind: 'model', reason: 'cap', provider: 'p', model: 'b' }]);
  });
});
