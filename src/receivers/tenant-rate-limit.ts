interface Bucket {
  tokens: number;
  at: number;
  /** spans the tenant's last request needed, when it was refused (0 after an admitted one) */
  refused: number;
}

/**
 * Per-tenant ingest rate limit: a token bucket of spans per tenant, so one tenant flooding the
 * receiver is answered 429 on its own requests while every other tenant's spans go through.
 * Buckets refill continuously; the retry-after is the time until the request's spans would fit.
 * Memory is bounded: past `maxTenants` buckets the least recently used is forgotten (that tenant
 * starts again from a full bucket, which errs on the side of accepting).
 */
export class TenantIngestLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #capacity: number;

  constructor(
    private readonly spansPerSecond: number,
    burstSeconds: number,
    private readonly now: () => number = () => performance.now(),
    private readonly maxTenants = 100_000,
  ) {
    this.#capacity = spansPerSecond * burstSeconds;
  }

  /**
   * Takes `spans` from each tenant's bucket if every one of them has enough; otherwise takes
   * nothing and returns the longest wait in ms (a request is accepted or refused whole).
   */
  take(spansByTenant: ReadonlyMap<string, number>): number {
    if (this.spansPerSecond <= 0) return 0;
    const at = this.now();
    let waitMs = 0;
    for (const [tenant, spans] of spansByTenant) {
      const bucket = this.#refilled(tenant, at);
      // A request larger than the whole bucket could never fit: admit it against an empty bucket
      // (its debt then delays the tenant's next requests) rather than refusing it forever.
      const needed = Math.min(spans, this.#capacity);
      if (bucket.tokens < needed) waitMs = Math.max(waitMs, ((needed - bucket.tokens) / this.spansPerSecond) * 1000);
    }
    if (waitMs > 0) {
      for (const [tenant, spans] of spansByTenant) {
        const bucket = this.#buckets.get(tenant)!;
        const needed = Math.min(spans, this.#capacity);
        if (bucket.tokens < needed) bucket.refused = needed;
      }
      return Math.ceil(waitMs);
    }
    for (const [tenant, spans] of spansByTenant) {
      const bucket = this.#buckets.get(tenant)!;
      bucket.tokens -= spans;
      bucket.refused = 0;
    }
    return 0;
  }

  /**
   * For a tenant known before its spans are decoded (by its ingest key, or its resources'
   * tenant.id): the ms until it may be heard again if its last request was refused and its bucket
   * still holds less than that request needed, else 0. Its next request is then refused without
   * decoding, so a flood costs little; a smaller request may be refused that would have fit,
   * until the bucket refills.
   */
  refusing(tenant: string): number {
    const bucket = this.#buckets.get(tenant);
    if (this.spansPerSecond <= 0 || !bucket || bucket.refused === 0) return 0;
    const tokens = this.#tokensAt(bucket, this.now());
    return tokens >= bucket.refused ? 0 : Math.ceil(((bucket.refused - tokens) / this.spansPerSecond) * 1000);
  }

  /** what the bucket holds at `at`, refilled since it was last taken from */
  #tokensAt(bucket: Bucket, at: number): number {
    return Math.min(this.#capacity, bucket.tokens + ((at - bucket.at) / 1000) * this.spansPerSecond);
  }

  #refilled(tenant: string, at: number): Bucket {
    let bucket = this.#buckets.get(tenant);
    if (bucket) {
      this.#buckets.delete(tenant); // re-inserted below: Map order is the LRU order
      bucket.tokens = this.#tokensAt(bucket, at);
      bucket.at = at;
    } else {
      bucket = { tokens: this.#capacity, at, refused: 0 };
      if (this.#buckets.size >= this.maxTenants) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    this.#buckets.set(tenant, bucket);
    return bucket;
  }
}
