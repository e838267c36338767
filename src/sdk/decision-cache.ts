// The SDK's copy of its tenant's decisions, fed by the subscription: the tenant-wide decision and
// one per run that is not plainly allowed. checkpoint() reads it without any I/O.

import { actionSeverity, type Decision } from '../contracts/decision.js';

export interface CachedDecision {
  decision: Decision;
  /** local clock when it arrived: retry-after counts from here (the server's clock may differ) */
  receivedAt: number;
  /** the subscription connection it arrived on */
  generation: number;
}

export interface DecisionCacheOptions {
  /** run decisions kept at most; the least recently updated go first */
  maxRuns?: number;
}

export class DecisionCache {
  readonly #maxRuns: number;
  #tenantWide: CachedDecision | undefined;
  readonly #runs = new Map<string, CachedDecision>();
  #generation = 0;

  constructor(options: DecisionCacheOptions = {}) {
    this.#maxRuns = Math.max(1, options.maxRuns ?? 10_000);
  }

  get generation(): number {
    return this.#generation;
  }

  get runCount(): number {
    return this.#runs.size;
  }

  /**
   * A new connection began: what it sends replaces what the previous one said. Its snapshot lists
   * the tenant-wide decision and only the runs not at ALLOW, so run decisions of older connections
   * are dropped by `prune()` once the snapshot had time to arrive (until then they still apply:
   * an old HALT is safer than a gap).
   */
  beginGeneration(): number {
    return ++this.#generation;
  }

  /** Drops run decisions that arrived on connections older than `generation`. */
  prune(generation: number): void {
    for (const [runId, entry] of this.#runs) if (entry.generation < generation) this.#runs.delete(runId);
  }

  apply(decision: Decision, receivedAt: number): void {
    const entry: CachedDecision = { decision, receivedAt, generation: this.#generation };
    const runId = decision.runId;
    if (runId === undefined) {
      if (this.#isOlder(entry, this.#tenantWide)) return;
      this.#tenantWide = entry;
      return;
    }
    const existing = this.#runs.get(runId);
    if (this.#isOlder(entry, existing)) return;
    this.#runs.delete(runId);
    // A plain ALLOW is what an absent entry means: thousands of healthy runs cost nothing.
    if (decision.action === 'ALLOW' && decision.fallbackModel === undefined) return;
    this.#runs.set(runId, entry);
    if (this.#runs.size > this.#maxRuns) {
      const oldest = this.#runs.keys().next();
      if (!oldest.done) this.#runs.delete(oldest.value);
    }
  }

  /** On one connection, sequences only grow: a lower one is a late duplicate. */
  #isOlder(entry: CachedDecision, existing: CachedDecision | undefined): boolean {
    return existing !== undefined && existing.generation === entry.generation && entry.decision.sequence < existing.decision.sequence;
  }

  tenantWide(): CachedDecision | undefined {
    return this.#tenantWide;
  }

  run(runId: string): CachedDecision | undefined {
    return this.#runs.get(runId);
  }

  /**
   * The decisions that apply to a run (its own first, then the tenant-wide one), or to the tenant
   * outside any run. `expiredBefore`: leave out decisions whose retry-after ran out before this
   * time (used while the subscription is down, when no update can lift them).
   */
  applicable(runId: string | undefined, expiredBefore?: number): CachedDecision[] {
    const out: CachedDecision[] = [];
    const own = runId === undefined ? undefined : this.#runs.get(runId);
    for (const entry of [own, this.#tenantWide]) {
      if (entry === undefined) continue;
      if (expiredBefore !== undefined && entry.decision.retryAfterMs > 0 && retryAt(entry) <= expiredBefore) continue;
      out.push(entry);
    }
    return out;
  }
}

/** When the decision's advice to wait runs out, on the local clock (0: no wait advised). */
export function retryAt(entry: CachedDecision): number {
  return entry.decision.retryAfterMs > 0 ? entry.receivedAt + entry.decision.retryAfterMs : 0;
}

/**
 * The governing decision: the most severe action (HALT > DEGRADE > THROTTLE > WARN > ALLOW); among
 * equally severe ones the one that lasts longest; on a full tie the first (the run's own).
 */
export function mostSevereEntry(entries: readonly CachedDecision[]): CachedDecision | undefined {
  let winner: CachedDecision | undefined;
  for (const entry of entries) {
    if (winner === undefined) {
      winner = entry;
      continue;
    }
    const bySeverity = actionSeverity(entry.decision.action) - actionSeverity(winner.decision.action);
    if (bySeverity > 0 || (bySeverity === 0 && retryAt(entry) > retryAt(winner))) winner = entry;
  }
  return winner;
}

/** A decision as the GraphQL API sends it (nulls for absent fields) made into the Decision shape. */
export function decisionFromGraphql(raw: Record<string, unknown>): Decision {
  const text = (key: string): string => (typeof raw[key] === 'string' ? (raw[key] as string) : '');
  const num = (key: string): number => (typeof raw[key] === 'number' ? (raw[key] as number) : 0);
  const decision: Decision = {
    tenantId: text('tenantId'),
    scope: (text('scope') || 'TENANT') as Decision['scope'],
    action: (text('action') || 'ALLOW') as Decision['action'],
    state: (text('state') || 'CLOSED') as Decision['state'],
    reason: text('reason'),
    metric: text('metric'),
    threshold: num('threshold'),
    observed: num('observed'),
    retryAfterMs: Math.max(0, num('retryAfterMs')),
    sequence: num('sequence'),
    issuedAt: text('issuedAt'),
  };
  if (typeof raw.runId === 'string' && raw.runId !== '') decision.runId = raw.runId;
  if (typeof raw.fallbackModel === 'string' && raw.fallbackModel !== '') decision.fallbackModel = raw.fallbackModel;
  if (typeof raw.tier === 'number') decision.tier = raw.tier;
  if (typeof raw.degraded === 'boolean') decision.degraded = raw.degraded;
  return decision;
}

export const DECISION_FIELDS =
  'tenantId runId scope action state reason metric threshold observed retryAfterMs fallbackModel tier degraded sequence issuedAt';
