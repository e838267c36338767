import { TokenBucket } from '../degradation/token-bucket.js';

interface Bucket {
  spans: TokenBucket;
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

export interface TenantIngestLimiterOptions {
  /** spans/s each tenant may send (0 = unlimited) */
  spansPerSecond: number;
  /** the burst, in seconds' worth of the rate */
  burstSeconds: number;
  /** ms clock; default performance.now */
  now?: () => number;
  /** buckets of named tenants kept; default 100 000 */
  maxTenants?: number;
  unknown?: UnknownTenantBudget;
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
  readonly #shared: TokenBucket | undefined;
  readonly #rate: number;
  readonly #burstSeconds: number;
  readonly #now: () => number;
  readonly #maxTenants: number;
  readonly #unknown: UnknownTenantBudget | undefined;

  constructor(options: TenantIngestLimiterOptions) {
    this.#rate = options.spansPerSecond;
    this.#burstSeconds = options.burstSeconds;
    this.#now = options.now ?? (() => performance.now());
    this.#maxTenants = options.maxTenants ?? 100_000;
    this.#unknown = options.unknown;
    const sharedRate = options.unknown?.spansPerSecond ?? 0;
    this.#shared = this.#rate > 0 && sharedRate > 0 ? this.#newBucket(sharedRate, this.#now()) : undefined;
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
    if (this.#rate <= 0) return undefined;
    const at = this.#now();
    const unknownSpans = this.#unknownSpans(spansByTenant);
    if (unknownSpans !== undefined) {
      const waitMs = this.#placesFor(spansByTenant, at);
      if (waitMs > 0) return { waitMs, reason: 'unknown_tenants_count_limited', tenantId: this.#firstUnknown(spansByTenant) };
    }
    // A request larger than a whole bucket could never fit: it is admitted against a full bucket
    // (its debt then delays the tenant's next requests) rather than refused forever.
    let waitMs = 0;
    let slowest = '';
    for (const [tenant, spans] of spansByTenant) {
      const wait = this.#touched(tenant, at).spans.timeUntil(spans, at);
      if (wait > waitMs) [waitMs, slowest] = [wait, tenant];
    }
    let refusal: IngestRefusal | undefined = waitMs > 0 ? { waitMs, reason: 'tenant_rate_limited', tenantId: slowest } : undefined;
    if (unknownSpans !== undefined && this.#shared !== undefined) {
      const sharedWait = this.#shared.timeUntil(unknownSpans, at);
      if (sharedWait > (refusal?.waitMs ?? 0)) refusal = { waitMs: sharedWait, reason: 'unknown_tenants_rate_limited', tenantId: this.#firstUnknown(spansByTenant) };
    }
    if (refusal) {
      for (const [tenant, spans] of spansByTenant) {
        const bucket = this.#bucket(tenant)!;
        if (bucket.spans.timeUntil(spans, at) > 0) bucket.refused = Math.min(spans, bucket.spans.capacity);
      }
      return refusal;
    }
    for (const [tenant, spans] of spansByTenant) {
      const bucket = this.#bucket(tenant)!;
      bucket.spans.take(spans, at);
      bucket.refused = 0;
    }
    if (unknownSpans !== undefined) this.#shared?.take(unknownSpans, at);
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
    if (this.#rate <= 0 || !bucket || bucket.refused === 0) return 0;
    return bucket.spans.timeUntil(bucket.refused, this.#now());
  }

  /** how many distinct unknown tenants hold a bucket (each is a place of `maxTenants`) */
  get unknownTenants(): number {
    return this.#unknownBuckets.size;
  }

  #isUnknown(tenant: string): boolean {
    return this.#unknown !== undefined && !this.#unknown.isKnown(tenant);
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
    while (newcomers > 0 && this.#unknownBuckets.size + newcomers > this.#unknown!.maxTenants) {
      let oldest: [string, Bucket] | undefined;
      for (const entry of this.#unknownBuckets) if (!spansByTenant.has(entry[0])) { oldest = entry; break; }
      if (!oldest) return 1000 * this.#burstSeconds;
      const untilFull = oldest[1].spans.timeUntil(oldest[1].spans.capacity, at);
      if (untilFull > 0) return untilFull;
      this.#unknownBuckets.delete(oldest[0]);
    }
    return 0;
  }

  #newBucket(spansPerSecond: number, at: number): TokenBucket {
    return new TokenBucket({ capacity: spansPerSecond * this.#burstSeconds, refillAmount: spansPerSecond, refillPeriodMs: 1000 }, at);
  }

  /** The tenant's bucket, made most recently used (a new one full). */
  #touched(tenant: string, at: number): Bucket {
    const buckets = this.#isUnknown(tenant) ? this.#unknownBuckets : this.#buckets;
    let bucket = buckets.get(tenant);
    if (bucket) {
      buckets.delete(tenant); // re-inserted below: Map order is the LRU order
    } else {
      bucket = { spans: this.#newBucket(this.#rate, at), refused: 0 };
      // unknown tenants' places were made by #placesFor, which never forgets a busy one
      if (buckets === this.#buckets && buckets.size >= this.#maxTenants) buckets.delete(buckets.keys().next().value!);
    }
    buckets.set(tenant, bucket);
    return bucket;
  }
}
