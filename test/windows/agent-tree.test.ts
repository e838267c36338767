import { describe, expect, it } from 'vitest';
import { AgentTree, MAX_AGENTS } from '../../src/windows/agent-tree.js';

describe('AgentTree', () => {
  it('links children that arrive before their parents (the export order)', () => {
    const t = new AgentTree();
    // root R -> tool T -> sub-agent A -> sub-agent B; B ends first, R last
    t.addAgent('B', 'A', -1);
    expect(t.maxDepth).toBe(0); // provisional: nothing above B is known yet
    t.addAgent('A', 'T', -1);
    expect(t.maxDepth).toBe(1);
    t.addOther('T', 'R', false);
    t.addAgent('R', '', -1);
    expect(t.maxDepth).toBe(2);
    expect(t.edges()).toEqual([
      { spanId: 'B', parentSpanId: 'A', depth: 2 },
      { spanId: 'A', parentSpanId: 'R', depth: 1 },
      { spanId: 'R', parentSpanId: '', depth: 0 },
    ]);
  });

  it('links children that arrive after their parents', () => {
    const t = new AgentTree();
    t.addAgent('R', '', -1);
    t.addOther('T', 'R', false);
    t.addOther('X', 'T', false); // a framework span between the tool and the sub-agent
    t.addAgent('A', 'X', -1);
    expect(t.maxDepth).toBe(1);
    expect(t.edges()[1]).toEqual({ spanId: 'A', parentSpanId: 'R', depth: 1 });
  });

  it('prefers explicit depths', () => {
    const t = new AgentTree();
    t.addAgent('A', 'unknown-parent', 3);
    expect(t.maxDepth).toBe(3);
    t.addAgent('B', 'A', -1);
    expect(t.maxDepth).toBe(4);
  });

  it('ignores duplicates and self or cyclic parents', () => {
    const t = new AgentTree();
    t.addAgent('A', 'A', -1);
    t.addAgent('A', '', -1);
    t.addAgent('B', 'C', -1);
    t.addAgent('C', 'B', -1); // a cycle in bad data must not loop or deepen forever
    expect(t.agentCount).toBe(3);
    expect(t.maxDepth).toBeLessThanOrEqual(1);
  });

  it('bounds the number of agents', () => {
    const t = new AgentTree();
    for (let i = 0; i <= MAX_AGENTS; i++) t.addAgent(`a${i}`, i === 0 ? '' : `a${i - 1}`, -1);
    expect(t.agentCount).toBe(MAX_AGENTS);
    expect(t.truncated).toBe(true);
    expect(t.maxDepth).toBe(MAX_AGENTS - 1);
  });
});
