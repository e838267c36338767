import { describe, expect, it } from 'vitest';
import { makeStore, span } from './helpers.js';

const MIN = 60_000;

describe('WindowStore eviction', () => {
  it('evicts runs idle for runIdleMs, measured on the store clock at record time', () => {
    const { store, clock, evicted } = makeStore({ runIdleMs: 15 * MIN });
    store.record(span({ runId: 'a', operation: 'execute_tool' }));
    clock.advance(10 * MIN);
    store.record(span({ runId: 'b' }));
    clock.advance(5 * MIN - 1);
    expect(store.runMetrics('t1', 'a')).toBeDefined(); // reads do not refresh idleness
    expect(store.evictIdle()).toBe(0);
    clock.advance(1);
    expect(store.evictIdle()).toBe(1);
    expect(store.activeRuns('t1')).toEqual(['b']);
    expect(evicted).toHaveLength(1);
    const e = evicted[0]!;
    expect(e.kind).toBe('run');
    if (e.kind === 'run') {
      expect([e.reason, e.tenantId, e.runId]).toEqual(['idle', 't1', 'a']);
      expect(e.details.toolCalls).toBe(1);
      expect(e.metrics.stepCount).toBe(1);
    }
  });

  it('a span refreshes the run; after an idle reset the run starts from zero', () => {
    const { store, clock } = makeStore({ runIdleMs: 15 * MIN });
    store.record(span({ runId: 'a', endMs: clock.ms }));
    clock.advance(14 * MIN);
    store.record(span({ runId: 'a', endMs: clock.ms }));
    clock.advance(14 * MIN);
    expect(store.evictIdle()).toBe(0);
    expect(store.runMetrics('t1', 'a')!.stepCount).toBe(2);
    clock.advance(MIN);
    expect(store.evictIdle()).toBe(1);
    store.record(span({ runId: 'a', endMs: clock.ms }));
    const m = store.runMetrics('t1', 'a')!;
    expect(m.stepCount).toBe(1);
    expect(m.durationSeconds).toBe(0.1);
  });

  it('evicts idle tenants after tenantIdleMs, and idle providers and models', () => {
    const { store, clock, evicted } = makeStore({ runIdleMs: 15 * MIN, tenantIdleMs: 60 * MIN, providerIdleMs: 60 * MIN });
    store.record(span({ tenantId: 'x', provider: 'openai', requestModel: 'gpt-4o' }));
    clock.advance(30 * MIN);
    store.record(span({ tenantId: 'y' }));
    clock.advance(30 * MIN);
    // run x/r1 (idle 60 min), run y/r1 (30 min), tenant x (60 min), provider + model (60 min)
    expect(store.evictIdle()).toBe(5);
    expect([...store.tenants()]).toEqual(['y']);
    expect(store.counts()).toEqual({ runs: 0, tenants: 1, providers: 0, models: 0 });
    expect(evicted.map((e) => e.kind).sort()).toEqual(['model', 'provider', 'run', 'run', 'tenant']);
  });

  it('evicting an idle tenant takes its remaining runs with it', () => {
    const { store, clock, evicted } = makeStore({ runIdleMs: 120 * MIN, tenantIdleMs: 60 * MIN });
    store.record(span({ runId: 'a' }));
    store.record(span({ runId: 'b' }));
    clock.advance(60 * MIN);
    expect(store.evictIdle()).toBe(3);
    expect(store.counts().runs).toBe(0);
    expect(evicted.map((e) => e.kind)).toEqual(['run', 'run', 'tenant']);
  });

  it('caps runs at maxRuns, evicting the least recently used', () => {
    const { store, clock, evicted } = makeStore({ maxRuns: 3 });
    for (const runId of ['a', 'b', 'c']) {
      store.record(span({ runId }));
      clock.advance(1_000);
    }
    store.record(span({ runId: 'a' })); // a is now the most recent
    store.record(span({ tenantId: 't2', runId: 'd' }));
    expect(store.counts().runs).toBe(3);
    expect(store.activeRuns('t1').sort()).toEqual(['a', 'c']);
    expect(store.activeRuns('t2')).toEqual(['d']);
    expect(evicted.map((e) => (e.kind === 'run' ? `${e.reason}:${e.runId}` : e.kind))).toEqual(['cap:b']);
    // t1 holds the most runs now, so it gives up its own, once one has been quiet for a minute.
    expect(store.admitRun('t1', 'e')).toBe('runs');
    clock.advance(60_000);
    store.record(span({ runId: 'e' }));
    expect(evicted.map((e) => (e.kind === 'run' ? e.runId : e.kind))).toEqual(['b', 'c']);
  });

  it('reports run details for the API', () => {
    const { store, clock } = makeStore();
    store.record(span({ runId: 'a', spanId: 'child', parentSpanId: 'root', operation: 'invoke_agent' }));
    clock.advance(2_000);
    store.record(span({ runId: 'a', spanId: 'root', operation: 'invoke_agent', endMs: clock.ms, durationMs: 3_000 }));
    expect(store.runDetails('t1', 'a')).toMatchObject({
      tenantId: 't1',
      runId: 'a',
      firstSeenMs: clock.ms - 2_000,
      lastSeenMs: clock.ms,
      spanCount: 2,
      stepCount: 0,
      subAgentDepth: 1,
      durationSeconds: 3,
      agentEdges: [
        { spanId: 'child', parentSpanId: 'root', depth: 1 },
        { spanId: 'root', parentSpanId: '', depth: 0 },
      ],
      agentEdgesTruncated: false,
    });
  });
});
