import type { AgentSpan } from '../contracts/agent-span.js';

export type ShareOutcome = { ok: true; taken: Map<string, number> } | { ok: false; tenantId: string; held: number };

/**
 * How many spans each tenant has in the write queue, capped per tenant: one tenant's burst fills
 * its own share (and gets 429) before it can fill the queue everyone else needs.
 */
export class WriteQueueShares {
  readonly #held = new Map<string, number>();

  constructor(private readonly maxPerTenant: number) {}

  /** Takes room for `spans` if every tenant among them has it; takes nothing otherwise. */
  tryTake(spans: readonly AgentSpan[]): ShareOutcome {
    const taken = new Map<string, number>();
    for (const span of spans) taken.set(span.tenantId, (taken.get(span.tenantId) ?? 0) + 1);
    return this.tryTakeAmounts(taken);
  }

  /** The same for amounts per tenant in this instance's unit (spans, or bytes). */
  tryTakeAmounts(taken: Map<string, number>): ShareOutcome {
    for (const [tenantId, n] of taken) {
      const held = this.#held.get(tenantId) ?? 0;
      if (held + n > this.maxPerTenant) return { ok: false, tenantId, held };
    }
    for (const [tenantId, n] of taken) this.#held.set(tenantId, (this.#held.get(tenantId) ?? 0) + n);
    return { ok: true, taken };
  }

  give(taken: ReadonlyMap<string, number>): void {
    for (const [tenantId, n] of taken) {
      const left = (this.#held.get(tenantId) ?? 0) - n;
      if (left > 0) this.#held.set(tenantId, left);
      else this.#held.delete(tenantId);
    }
  }

  held(tenantId: string): number {
    return this.#held.get(tenantId) ?? 0;
  }
}
