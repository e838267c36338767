// Tenants by how many runs they hold, so the store-wide run cap can take room from the tenant
// holding the most in O(1): counts move by one at a time, so the largest count moves by at most one.

export class RunCountRanking<T> {
  /** tenants holding exactly i runs, at index i (index 0 unused: a tenant with no runs is not ranked) */
  readonly #buckets: Set<T>[] = [];
  #largest = 0;

  /** The tenant's run count went from `from` to `to` (one apart). */
  moved(tenant: T, from: number, to: number): void {
    if (from > 0) this.#buckets[from]?.delete(tenant);
    if (to > 0) {
      let bucket = this.#buckets[to];
      if (bucket === undefined) this.#buckets[to] = bucket = new Set();
      bucket.add(tenant);
    }
    if (to > this.#largest) this.#largest = to;
    while (this.#largest > 0 && (this.#buckets[this.#largest]?.size ?? 0) === 0) this.#largest--;
  }

  /** A tenant holding the most runs, or undefined when none holds any. */
  largest(): T | undefined {
    const bucket = this.#buckets[this.#largest];
    if (bucket === undefined) return undefined;
    for (const tenant of bucket) return tenant;
    return undefined;
  }
}
