import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AgentSpan } from '../../src/contracts/agent-span.js';
import { makeStore, span } from './helpers.js';

describe('WindowStore sub-agent depth', () => {
  it('uses agent.depth when the span carries it', () => {
    const { store } = makeStore();
    store.record(span({ operation: 'chat', depth: 2 }));
    store.record(span({ operation: 'invoke_agent', depth: 1 }));
    expect(store.runMetrics('t1', 'r1')!.subAgentDepth).toBe(2);
  });

  it('derives depth from invoke_agent parents arriving after their children', () => {
    const { store } = makeStore();
    // root R -> tool T1 -> agent A -> chat C, tool T2 -> agent B; exported as they end
    const order: Partial<AgentSpan>[] = [
      { spanId: 'C', parentSpanId: 'A', operation: 'chat' },
      { spanId: 'B', parentSpanId: 'T2', operation: 'invoke_agent' },
      { spanId: 'T2', parentSpanId: 'A', operation: 'execute_tool' },
      { spanId: 'A', parentSpanId: 'T1', operation: 'invoke_agent' },
      { spanId: 'T1', parentSpanId: 'R', operation: 'execute_tool' },
    ];
    for (const s of order) store.record(span(s));
    expect(store.runMetrics('t1', 'r1')!.subAgentDepth).toBe(1); // provisional: R unknown
    store.record(span({ spanId: 'R', parentSpanId: '', operation: 'invoke_agent' }));
    expect(store.runMetrics('t1', 'r1')!.subAgentDepth).toBe(2);
    const edges = store.runDetails('t1', 'r1')!.agentEdges;
    expect(edges).toEqual([
      { spanId: 'B', parentSpanId: 'A', depth: 2 },
      { spanId: 'A', parentSpanId: 'R', depth: 1 },
      { spanId: 'R', parentSpanId: '', depth: 0 },
    ]);
  });

  // A random span tree (node 0 is the root agent); models are leaves.
  const treeArb = fc
    .array(
      fc.record({ parentPick: fc.nat(), kind: fc.constantFrom('invoke_agent', 'execute_tool', '', 'chat') }),
      { minLength: 0, maxLength: 30 },
    )
    .map((nodes) => {
      const parents = [-1];
      const kinds = ['invoke_agent'];
      nodes.forEach((n, i) => {
        let p = n.parentPick % (i + 1);
        while (kinds[p] === 'chat') p = parents[p]!; // a model call is never a parent
        parents.push(p);
        kinds.push(n.kind);
      });
      return { parents, kinds };
    });

  function trueMaxDepth(parents: number[], kinds: string[]): number {
    let max = 0;
    kinds.forEach((k, i) => {
      if (k !== 'invoke_agent') return;
      let d = 0;
      for (let p = parents[i]!; p >= 0; p = parents[p]!) if (kinds[p] === 'invoke_agent') d++;
      max = Math.max(max, d);
    });
    return max;
  }

  function replay(parents: number[], kinds: string[], order: number[]): number {
    const { store } = makeStore();
    for (const i of order) {
      const p = parents[i]!;
      store.record(span({ spanId: `n${i}`, parentSpanId: p < 0 ? '' : `n${p}`, operation: kinds[i]! }));
    }
    return store.runMetrics('t1', 'r1')!.subAgentDepth;
  }

  it('is exact for child-first (export) and parent-first orders (fast-check)', () => {
    fc.assert(
      fc.property(treeArb, ({ parents, kinds }) => {
        const expected = trueMaxDepth(parents, kinds);
        const parentFirst = parents.map((_, i) => i); // parents have lower indices
        expect(replay(parents, kinds, parentFirst)).toBe(expected);
        expect(replay(parents, kinds, [...parentFirst].reverse())).toBe(expected);
      }),
    );
  });

  it('never over-estimates, and is exact when agents hang directly under agents, in any order (fast-check)', () => {
    fc.assert(
      fc.property(
        treeArb,
        fc.infiniteStream(fc.nat()),
        ({ parents, kinds }, randoms) => {
          const order = parents.map((_, i) => i);
          for (let i = order.length - 1; i > 0; i--) {
            const j = randoms.next().value % (i + 1);
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          const expected = trueMaxDepth(parents, kinds);
          const got = replay(parents, kinds, order);
          expect(got).toBeLessThanOrEqual(expected);
          const agentsOnly = kinds.every((k, i) => k !== 'invoke_agent' || i === 0 || kinds[parents[i]!] === 'invoke_agent');
          if (agentsOnly) expect(got).toBe(expected);
        },
      ),
    );
  });
});
