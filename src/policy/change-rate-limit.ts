// A token bucket per tenant for run-time policy changes: every change is persisted and replayed
// at each reload, so a tenant changing its policy in a loop would grow the log without bound.

import { TokenBucket } from '../degradation/token-bucket.js';

/** Changes a tenant may make at once before it has to wait; a script setting a tenant up in one go fits. */
export const CHANGE_BURST = 60;
/** Changes per second a tenant may keep making. */
export const CHANGES_PER_SECOND = 1;
/** Buckets kept; past this the full ones (tenants that have been quiet) are forgotten first. */
export const MAX_TRACKED_TENANTS = 10_000;

export class ChangeRateLimit {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #settings: { capacity: number; refillAmount: number; refillPeriodMs: number };

  constructor(
    private readonly now: () => number,
    burst = CHANGE_BURST,
    perSecond = CHANGES_PER_SECOND,
  ) {
    this.#settings = { capacity: burst, refillAmount: perSecond, refillPeriodMs: 1000 };
  }

  /** Takes one change for `tenantId`: undefined when allowed, else the whole seconds until the next one is. */
  take(tenantId: string): number | undefined {
    const now = this.now();
    const bucket = this.#bucket(tenantId, now);
    if (bucket.tryTake(1, now)) return undefined;
    return Math.max(1, Math.ceil(bucket.timeUntil(1, now) / 1000));
  }

  /** How many tenants have a bucket, for tests of the bound. */
  get size(): number {
    return this.#buckets.size;
  }

  #bucket(tenantId: string, now: number): TokenBucket {
    let bucket = this.#buckets.get(tenantId);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_TRACKED_TENANTS) this.#forgetFull(now);
      bucket = new TokenBucket(this.#settings, now);
      this.#buckets.set(tenantId, bucket);
    }
    return bucket;
  }

  // a full bucket is the same as no bucket; if none is full the oldest goes, which can only be generous
  #forgetFull(now: number): void {
    for (const [tenantId, bucket] of this.#buckets) {
      if (bucket.level(now) >= bucket.capacity) this.#buckets.delete(tenantId);
    }
    if (this.#buckets.size >= MAX_TRACKED_TENANTS) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
