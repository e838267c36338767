// The run bounds: a tenant's own (maxRunsPerTenant) and the store's (maxRuns). One tenant's new
// runs never evict another tenant's smaller share, and no run holding a decision gives way.
import { describe, expect, it } from 'vitest';
import { makeStore, span } from './helpers.js';

const decisions = (held: Set<string>) => (tenantId: string, runId: string) => held.has(`${tenantId}/${runId}`);

describe('the run bounds', () => {
  it('issue 23: 101k distinct run ids from one tenant leave the other tenant’s runs in place', () => {
    const { store } = makeStore({ holdsDecision: decisions(new Set(['b/halted'])) });
    store.record(span({ tenantId: 'b', runId: 'halted', operation: 'execute_tool' }));
    store.record(span({ tenantId: 'b', runId: 'steady', operation: 'execute_tool' }));
    for (let r = 0; r < 101_000; r++) store.record(span({ tenantId: 'a', runId: `flood-${r}`, operation: 'execute_tool' }));
    expect(store.activeRuns('a')).toHaveLength(10_000);
    expect(store.activeRuns('b').sort()).toEqual(['halted', 'steady']);
    expect(store.runMetrics('b', 'steady')!.stepCount).toBe(1);
    expect(store.admitRun('a', 'one-more')).toBe('tenant_runs');
    expect(store.admitRun('b', 'another')).toBeUndefined();
  });

  it('at its own bound, a tenant gives up its least recently used run quiet a minute without a decision', () => {
    const { store, clock, evicted } = makeStore({ maxRunsPerTenant: 3, holdsDecision: decisions(new Set(['t1/a'])) });
    for (const runId of ['a', 'b', 'c']) store.record(span({ runId }));
    clock.advance(30_000);
    store.record(span({ runId: 'd' })); // nothing quiet for a minute yet: refused, its span dropped
    expect(store.activeRuns('t1').sort()).toEqual(['a', 'b', 'c']);
    expect(store.admitRun('t1', 'd')).toBe('tenant_runs');
    clock.advance(30_000);
    store.record(span({ runId: 'c' }));
    expect(store.admitRun('t1', 'd')).toBeUndefined(); // a holds a decision, c was just seen: b goes
    expect(store.activeRuns('t1').sort()).toEqual(['a', 'c', 'd']);
    expect(evicted.map((e) => (e.kind === 'run' ? `${e.reason}:${e.runId}` : e.kind))).toEqual(['cap:b']);
    clock.advance(60_000);
    store.record(span({ runId: 'c' }));
    store.record(span({ runId: 'd' }));
    expect(store.admitRun('t1', 'e')).toBe('tenant_runs'); // only a is quiet, and it holds a decision
    expect(store.activeRuns('t1').sort()).toEqual(['a', 'c', 'd']);
  });

  it('at the store cap, takes room from the tenant holding the most runs, never from a smaller one', () => {
    const { store, clock } = makeStore({ maxRuns: 10, maxRunsPerTenant: 100, holdsDecision: decisions(new Set(['b/halted'])) });
    for (const runId of ['halted', 'x', 'y']) store.record(span({ tenantId: 'b', runId }));
    clock.advance(1_000);
    for (let r = 0; r < 20; r++) {
      store.record(span({ tenantId: 'a', runId: `a-${r}` }));
      clock.advance(1);
    }
    // A filled the store and holds the most: it would have to give up its own, none quiet yet.
    expect(store.activeRuns('a')).toHaveLength(7);
    expect(store.activeRuns('b').sort()).toEqual(['halted', 'x', 'y']);
    expect(store.admitRun('a', 'more')).toBe('runs');
    // C, holding fewer than A, takes A's least recently used runs until it holds the most itself.
    for (let r = 0; r < 10; r++) {
      store.record(span({ tenantId: 'c', runId: `c-${r}` }));
      clock.advance(1);
    }
    expect(store.activeRuns('a')).toEqual(['a-4', 'a-5', 'a-6']);
    expect(store.activeRuns('c')).toEqual(['c-0', 'c-1', 'c-2', 'c-3']);
    expect(store.activeRuns('b').sort()).toEqual(['halted', 'x', 'y']);
    expect(store.counts().runs).toBe(10);
  });

  it('refuses a new run rather than evict one holding a decision', () => {
    const { store, clock } = makeStore({ maxRuns: 2, holdsDecision: () => true });
    store.record(span({ tenantId: 'a', runId: 'one' }));
    store.record(span({ tenantId: 'b', runId: 'two' }));
    clock.advance(3_600_000 - 1);
    store.record(span({ tenantId: 'b', runId: 'three' }));
    store.record(span({ tenantId: 'c', runId: 'four' }));
    expect([...store.activeRuns('a'), ...store.activeRuns('b'), ...store.activeRuns('c')]).toEqual(['one', 'two']);
    expect(store.admitRun('c', 'four')).toBe('runs');
  });

  it('resumes no more runs of a tenant than its bound', () => {
    const { store } = makeStore({ maxRunsPerTenant: 2 });
    const totals = (runId: string) => ({ tenantId: 't1', runId, spanCount: 1, stepCount: 1, modelCalls: 0, toolCalls: 1, errorCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, startedAtMs: 0, endedAtMs: 0, maxDepth: 0 });
    expect(store.resumeRuns([totals('a'), totals('b'), totals('c')])).toBe(2);
    expect(store.activeRuns('t1')).toEqual(['a', 'b']);
  });
});
