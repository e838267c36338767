// Per-tenant call counts inside one breaker window, and how many of those tenants are over the
// breaker's thresholds on their own calls alone. A shared breaker counts these tenants, so one
// tenant's storm plus a stray failure from someone else is one failing tenant, not two.

/** What makes a tenant count as failing: its own rates over the thresholds, over its own minimum of calls. */
export interface TallyRule {
  minCalls: number;
  failureRateThreshold: number;
  slowCallRateThreshold: number;
}

interface Tally {
  calls: number;
  failures: number;
  slowCalls: number;
  over: boolean;
}

export class TenantTallies {
  readonly #byTenant = new Map<string, Tally>();
  #over = 0;
  #rule: TallyRule;

  constructor(rule: TallyRule) {
    this.#rule = rule;
  }

  /** tenants with a call in the window */
  get size(): number {
    return this.#byTenant.size;
  }

  /** tenants whose own calls are over the rule */
  get over(): number {
    return this.#over;
  }

  /** Applies a changed rule (a policy reload) to every tenant held; called per call, so it allocates only on a change. */
  setRule(minCalls: number, failureRateThreshold: number, slowCallRateThreshold: number): void {
    const r = this.#rule;
    if (r.minCalls === minCalls && r.failureRateThreshold === failureRateThreshold && r.slowCallRateThreshold === slowCallRateThreshold) return;
    this.#rule = { minCalls, failureRateThreshold, slowCallRateThreshold };
    this.#over = 0;
    for (const tally of this.#byTenant.values()) {
      tally.over = this.#isOver(tally);
      if (tally.over) this.#over++;
    }
  }

  add(tenantId: string, failure: boolean, slow: boolean): void {
    let tally = this.#byTenant.get(tenantId);
    if (tally === undefined) this.#byTenant.set(tenantId, (tally = { calls: 0, failures: 0, slowCalls: 0, over: false }));
    tally.calls++;
    if (failure) tally.failures++;
    if (slow) tally.slowCalls++;
    this.#relevel(tally);
  }

  remove(tenantId: string, failure: boolean, slow: boolean): void {
    const tally = this.#byTenant.get(tenantId);
    if (tally === undefined) return;
    tally.calls--;
    if (failure) tally.failures--;
    if (slow) tally.slowCalls--;
    if (tally.calls <= 0) {
      if (tally.over) this.#over--;
      this.#byTenant.delete(tenantId);
      return;
    }
    this.#relevel(tally);
  }

  clear(): void {
    this.#byTenant.clear();
    this.#over = 0;
  }

  #relevel(tally: Tally): void {
    const over = this.#isOver(tally);
    if (over !== tally.over) this.#over += over ? 1 : -1;
    tally.over = over;
  }

  #isOver(t: Tally): boolean {
    const r = this.#rule;
    if (t.calls < r.minCalls) return false;
    return t.failures / t.calls >= r.failureRateThreshold || t.slowCalls / t.calls >= r.slowCallRateThreshold;
  }
}

/**
 * A tenant's own minimum of calls in a shared window: an even share of the window's minimum among
 * the tenants required, so that `sharedMinTenants` tenants over it can always fill the window.
 */
export function tenantShare(windowMinimum: number, sharedMinTenants: number): number {
  return Math.max(1, Math.floor(windowMinimum / Math.max(1, sharedMinTenants)));
}
