// A token bucket per tenant for run-time policy changes: every change is persisted and replayed
// at each reload, so a tenant changing its policy in a loop would grow the log without bound.

/** Changes a tenant may make at once before it has to wait; a script setting a tenant up in one go fits. */
export const CHANGE_BURST = 60;
/** Changes per second a tenant may keep making. */
export const CHANGES_PER_SECOND = 1;
/** Buckets kept; past this the full ones (tenants that have been quiet) are forgotten first. */
export const MAX_TRACKED_TENANTS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class ChangeRateLimit {
  readonly #buckets = new Map<string, Bucket>();

  constructor(
    private readonly now: () => number,
    private readonly burst = CHANGE_BURST,
    private readonly perSecond = CHANGES_PER_SECOND,
  ) {}

  /** Takes one change for `tenantId`: undefined when allowed, else the whole seconds until the next one is. */
  take(tenantId: string): number | undefined {
    const now = this.now();
    const bucket = this.#refilled(tenantId, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond));
  }

  /** How many tenants have a bucket, for tests of the bound. */
  get size(): number {
    return this.#buckets.size;
  }

  #refilled(tenantId: string, now: number): Bucket {
    let bucket = this.#buckets.get(tenantId);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_TRACKED_TENANTS) this.#forgetFull(now);
      bucket = { tokens: this.burst, at: now };
      this.#buckets.set(tenantId, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    return bucket;
  }

  // a full bucket is the same as no bucket; if none is full the oldest goes, which can only be generous
  #forgetFull(now: number): void {
    for (const [tenantId, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond >= this.burst) this.#buckets.delete(tenantId);
    }
    if (this.#buckets.size >= MAX_TRACKED_TENANTS) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
