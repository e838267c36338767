// The sub-agent tree of one run: invoke_agent spans linked to their nearest invoke_agent ancestor,
// with depth derived when spans did not carry agent.depth.
//
// Spans are exported when they END, so children normally arrive before their parents (the root
// agent ends last); batches can also deliver a parent first. Both orders are handled:
//  - an agent whose ancestor chain reaches an unknown span waits on that span's id;
//  - when that span arrives: an agent resolves the waiters; any other span (an execute_tool that
//    ran a sub-agent, a framework span) passes them on to its own parent;
//  - a non-agent span is remembered (spanId -> parent) only when it hangs under a known agent or
//    had waiters, so a parent-first order can be walked later; model calls are leaves and never
//    remembered. That keeps a 10 000-step loop from growing the tree.
// An agent with no known agent ancestor has depth 0 (provisionally: a late parent deepens it).
// Derived depths never over-estimate. They are exact in any arrival order when agents hang
// directly under agents, and through intermediates in child-first or parent-first order. The one
// gap, kept to save memory: an intermediate that arrived before both the sub-agent below it and
// any agent above it was not remembered, so that sub-agent keeps the depth of what is known above
// it. (agent.depth, stamped by the SDK, avoids the question.)
// Memory is bounded: MAX_AGENTS nodes, MAX_LINKS remembered intermediates (oldest dropped first).

export const MAX_AGENTS = 256;
const MAX_LINKS = 64;
/** bound on ancestor walks, which also stops a cycle of bad parent ids */
const MAX_WALK = MAX_AGENTS + MAX_LINKS;

export interface AgentEdge {
  /** the invoke_agent span */
  spanId: string;
  /** its nearest invoke_agent ancestor; '' for a root or a parent not (yet) seen */
  parentSpanId: string;
  depth: number;
}

interface AgentNode {
  parentAgent: string;
  /** agent.depth from the span, or -1 to derive it */
  explicitDepth: number;
  /** longest chain of agents below this one (0 for a leaf) */
  height: number;
}

export class AgentTree {
  private readonly agents = new Map<string, AgentNode>();
  private links: Map<string, string> | null = null;
  private waiting: Map<string, string[]> | null = null;
  /** deepest agent depth found so far */
  maxDepth = 0;
  /** true once an agent was dropped for the MAX_AGENTS bound */
  truncated = false;

  get agentCount(): number {
    return this.agents.size;
  }

  /** An invoke_agent span. Duplicates (re-exported spans) are ignored. */
  addAgent(spanId: string, parentSpanId: string, explicitDepth: number): void {
    if (spanId === '' || this.agents.has(spanId)) return;
    if (this.agents.size >= MAX_AGENTS) {
      this.truncated = true;
      if (explicitDepth > this.maxDepth) this.maxDepth = explicitDepth;
      return;
    }
    this.agents.set(spanId, { parentAgent: '', explicitDepth, height: 0 });
    this.links?.delete(spanId);
    this.maxDepth = Math.max(this.maxDepth, this.depthOf(spanId));
    this.climb(spanId, parentSpanId);
    const waiters = this.waiting?.get(spanId);
    if (waiters !== undefined) {
      this.waiting?.delete(spanId);
      for (const w of waiters) this.link(w, spanId);
    }
  }

  /** Any other span of the run (cheap unless it is on an agent's ancestor chain). */
  addOther(spanId: string, parentSpanId: string, isLeaf: boolean): void {
    if (spanId === '' || this.agents.has(spanId)) return;
    const waiters = this.waiting?.get(spanId);
    if (waiters !== undefined) {
      this.waiting?.delete(spanId);
      for (const w of waiters) this.climb(w, parentSpanId);
    }
    if (isLeaf && waiters === undefined) return;
    if (
      parentSpanId !== '' &&
      (waiters !== undefined || this.agents.has(parentSpanId) || this.links?.has(parentSpanId))
    ) {
      this.links ??= new Map();
      if (this.links.size >= MAX_LINKS) {
        const oldest = this.links.keys().next();
        if (!oldest.done) this.links.delete(oldest.value);
      }
      this.links.set(spanId, parentSpanId);
    }
  }

  /** Agent edges with their depth, for the run details API. */
  edges(): AgentEdge[] {
    const out: AgentEdge[] = [];
    for (const [spanId, node] of this.agents) {
      out.push({ spanId, parentSpanId: node.parentAgent, depth: this.depthOf(spanId) });
    }
    return out;
  }

  /** Walk up from `from` to the nearest known agent and link to it, or wait on the gap. */
  private climb(agentId: string, from: string): void {
    let cur = from;
    for (let steps = 0; steps < MAX_WALK; steps++) {
      if (cur === '' || cur === agentId) return; // a root (or a self-loop): depth stays derived as 0
      if (this.agents.has(cur)) {
        this.link(agentId, cur);
        return;
      }
      const up = this.links?.get(cur);
      if (up === undefined) {
        this.waiting ??= new Map();
        const list = this.waiting.get(cur);
        if (list === undefined) this.waiting.set(cur, [agentId]);
        else list.push(agentId);
        return;
      }
      cur = up;
    }
  }

  private link(childId: string, parentId: string): void {
    const child = this.agents.get(childId);
    if (child === undefined || child.parentAgent !== '' || this.isAncestor(childId, parentId)) return;
    child.parentAgent = parentId;
    // Propagate the child's subtree height up the chain while it grows.
    let h = child.height + 1;
    let p = parentId;
    for (let steps = 0; p !== '' && steps < MAX_WALK; steps++, h++) {
      const node = this.agents.get(p);
      if (node === undefined || node.height >= h) break;
      node.height = h;
      p = node.parentAgent;
    }
    this.maxDepth = Math.max(this.maxDepth, this.depthOf(childId) + child.height);
  }

  /** true when `candidate` is `nodeId` or below it: linking would close a cycle. */
  private isAncestor(nodeId: string, candidate: string): boolean {
    let cur = candidate;
    for (let steps = 0; cur !== '' && steps < MAX_WALK; steps++) {
      if (cur === nodeId) return true;
      cur = this.agents.get(cur)?.parentAgent ?? '';
    }
    return false;
  }

  private depthOf(spanId: string): number {
    let extra = 0;
    let cur = spanId;
    for (let steps = 0; steps < MAX_WALK; steps++) {
      const node = this.agents.get(cur);
      if (node === undefined) return extra;
      if (node.explicitDepth >= 0) return node.explicitDepth + extra;
      if (node.parentAgent === '') return extra;
      extra++;
      cur = node.parentAgent;
    }
    return extra;
  }
}
