interface Bucket {
  tokens: number;
  at: number;
  /** spans the tenant's last request needed, when it was refused (0 after an admitted one) */
  refused: number;
}

/** Why a request was refused: its own tenant's rate, or the budget tenants not named in the policy share. */
export type IngestRefusalReason = 'tenant_rate_limited' | 'unknown_tenants_rate_limited' | 'unknown_tenants_count_limited';

export interface IngestRefusal {
  waitMs: number;
  reason: IngestRefusalReason;
  /** the tenant refused: the one with the longest wait, or for the shared budget the request's first unknown tenant */
  tenantId: string;
}

/**
 * The budget that tenants not named in the policy share when spans name their own tenant (no
 * ingest keys): without it a sender rotating tenant.id would get a fresh bucket per request.
 */
export interface UnknownTenantBudget {
  /** spans/s all unknown tenants together may send (burst as the per-tenant one; 0 = unlimited) */
  spansPerSecond: number;
  /** distinct unknown tenants with a bucket at once; an idle one's full bucket frees its place */
  maxTenants: number;
  /** whether a tenant has its own budget only (named in the policy, or bound by an ingest key) */
  isKnown: (tenant: string) => boolean;
}

/**
 * Per-tenant ingest rate limit: a token bucket of spans per tenant, so one tenant flooding the
 * receiver is answered 429 on its own requests while every other tenant's spans go through.
 * Buckets refill continuously; the retry-after is the time until the request's spans would fit.
 * Memory is bounded: past `maxTenants` buckets the least recently used is forgotten (that tenant
 * starts again from a full bucket, which errs on the side of accepting). Unknown tenants (see
 * UnknownTenantBudget) also pay into one shared bucket, and a new one is refused while
 * `maxTenants` of them hold a bucket that has not refilled, so forgetting cannot be forced.
 */
export class TenantIngestLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #unknownBuckets = new Map<string, Bucket>();
  readonly #shared: Bucket;
  readonly #capacity: number;
  readonly #sharedCapacity: number;

  constructor(
    private readonly spansPerSecond: number,
    private readonly burstSeconds: number,
    private readonly now: () => number = () => performance.now(),
    private readonly maxTenants = 100_000,
    private readonly unknown?: UnknownTenantBudget,
  ) {
    this.#capacity = spansPerSecond * burstSeconds;
    this.#sharedCapacity = (unknown?.spansPerSecond ?? 0) * burstSeconds;
    this.#shared = { tokens: this.#sharedCapacity, at: now(), refused: 0 };
  }

  /**
   * Takes `spans` from each tenant's bucket if every one of them has enough; otherwise takes
   * nothing and returns the longest wait in ms (a request is accepted or refused whole).
   */
  take(spansByTenant: ReadonlyMap<string, number>): number {
    return this.admit(spansByTenant)?.waitMs ?? 0;
  }

  /** As take, saying why a refused request was refused; undefined when it was admitted. */
  admit(spansByTenant: ReadonlyMap<string, number>): IngestRefusal | undefined {
    if (this.spansPerSecond <= 0) return undefined;
    const at = this.now();
    const unknownSpans = this.#unknownSpans(spansByTenant);
    if (unknownSpans !== undefined) {
      const waitMs = this.#placesFor(spansByTenant, at);
      if (waitMs > 0) return { waitMs, reason: 'unknown_tenants_count_limited', tenantId: this.#firstUnknown(spansByTenant) };
    }
    let waitMs = 0;
    let slowest = '';
    for (const [tenant, spans] of spansByTenant) {
      const bucket = this.#refilled(tenant, at);
      // A request larger than the whole bucket could never fit: admit it against an empty bucket
      // (its debt then delays the tenant's next requests) rather than refusing it forever.
      const needed = Math.min(spans, this.#capacity);
      const wait = ((needed - bucket.tokens) / this.spansPerSecond) * 1000;
      if (bucket.tokens < needed && wait > waitMs) [waitMs, slowest] = [wait, tenant];
    }
    let refusal: IngestRefusal | undefined = waitMs > 0 ? { waitMs: Math.ceil(waitMs), reason: 'tenant_rate_limited', tenantId: slowest } : undefined;
    if (unknownSpans !== undefined && this.#sharedCapacity > 0) {
      this.#shared.tokens = this.#tokensAt(this.#shared, at, this.#sharedCapacity, this.unknown!.spansPerSecond);
      this.#shared.at = at;
      const needed = Math.min(unknownSpans, this.#sharedCapacity);
      const waitMs = Math.ceil(((needed - this.#shared.tokens) / this.unknown!.spansPerSecond) * 1000);
      if (this.#shared.tokens < needed && waitMs > (refusal?.waitMs ?? 0)) refusal = { waitMs, reason: 'unknown_tenants_rate_limited', tenantId: this.#firstUnknown(spansByTenant) };
    }
    if (refusal) {
      for (const [tenant, spans] of spansByTenant) {
        const bucket = this.#bucket(tenant)!;
        const needed = Math.min(spans, this.#capacity);
        if (bucket.tokens < needed) bucket.refused = needed;
      }
      return refusal;
    }
    for (const [tenant, spans] of spansByTenant) {
      const bucket = this.#bucket(tenant)!;
      bucket.tokens -= spans;
      bucket.refused = 0;
    }
    if (unknownSpans !== undefined && this.#sharedCapacity > 0) this.#shared.tokens -= unknownSpans;
    return undefined;
  }

  /**
   * For a tenant known before its spans are decoded (by its ingest key, or its resources'
   * tenant.id): the ms until it may be heard again if its last request was refused and its bucket
   * still holds less than that request needed, else 0. Its next request is then refused without
   * decoding, so a flood costs little; a smaller request may be refused that would have fit,
   * until the bucket refills.
   */
  refusing(tenant: string): number {
    const bucket = this.#bucket(tenant);
    if (this.spansPerSecond <= 0 || !bucket || bucket.refused === 0) return 0;
    const tokens = this.#tokensAt(bucket, this.now());
    return tokens >= bucket.refused ? 0 : Math.ceil(((bucket.refused - tokens) / this.spansPerSecond) * 1000);
  }

  /** how many distinct unknown tenants hold a bucket (each is a place of `maxTenants`) */
  get unknownTenants(): number {
    return this.#unknownBuckets.size;
  }

  #isUnknown(tenant: string): boolean {
    return this.unknown !== undefined && !this.unknown.isKnown(tenant);
  }

  /** the spans of the request's unknown tenants; undefined when it names none */
  #unknownSpans(spansByTenant: ReadonlyMap<string, number>): number | undefined {
    let total: number | undefined;
    for (const [tenant, spans] of spansByTenant) if (this.#isUnknown(tenant)) total = (total ?? 0) + spans;
    return total;
  }

  #firstUnknown(spansByTenant: ReadonlyMap<string, number>): string {
    for (const tenant of spansByTenant.keys()) if (this.#isUnknown(tenant)) return tenant;
    return '';
  }

  #bucket(tenant: string): Bucket | undefined {
    return (this.#isUnknown(tenant) ? this.#unknownBuckets : this.#buckets).get(tenant);
  }

  /**
   * Makes a place for each unknown tenant of the request that has none, by forgetting idle ones
   * whose bucket is full again (the same as a fresh one); 0, or the ms until the least recently
   * used one will be full, when there is no room.
   */
  #placesFor(spansByTenant: ReadonlyMap<string, number>, at: number): number {
    let newcomers = 0;
    for (const tenant of spansByTenant.keys()) if (this.#isUnknown(tenant) && !this.#unknownBuckets.has(tenant)) newcomers++;
    while (newcomers > 0 && this.#unknownBuckets.size + newcomers > this.unknown!.maxTenants) {
      let oldest: [string, Bucket] | undefined;
      for (const entry of this.#unknownBuckets) if (!spansByTenant.has(entry[0])) { oldest = entry; break; }
      if (!oldest) return 1000 * this.burstSeconds;
      const missing = this.#capacity - this.#tokensAt(oldest[1], at);
      if (missing > 0) return Math.ceil((missing / this.spansPerSecond) * 1000);
      this.#unknownBuckets.delete(oldest[0]);
    }
    return 0;
  }

  /** what the bucket holds at `at`, refilled since it was last taken from (a tenant's, unless told the shared one's size and rate) */
  #tokensAt(bucket: Bucket, at: number, capacity = this.#capacity, spansPerSecond = this.spansPerSecond): number {
    return Math.min(capacity, bucket.tokens + ((at - bucket.at) / 1000) * spansPerSecond);
  }

  #refilled(tenant: string, at: number): Bucket {
    const buckets = this.#isUnknown(tenant) ? this.#unknownBuckets : this.#buckets;
    let bucket = buckets.get(tenant);
    if (bucket) {
      buckets.delete(tenant); // re-inserted below: Map order is the LRU order
      bucket.tokens = this.#tokensAt(bucket, at);
      bucket.at = at;
    } else {
      bucket = { tokens: this.#capacity, at, refused: 0 };
      // unknown tenants' places were made by #placesFor, which never forgets a busy one
      if (buckets === this.#buckets && buckets.size >= this.maxTenants) buckets.delete(buckets.keys().next().value!);
    }
    buckets.set(tenant, bucket);
    return bucket;
  }
}
