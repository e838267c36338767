// Per-tenant quota on both axes a provider limits: requests per minute and tokens per minute, each a
// token bucket. Model calls the spans report are debited after the fact (they happened: the bucket
// may run into debt); `reserve` answers the SDK's pre-flight check before a call and debits only
// when it grants. A THROTTLE's retry-after is what the bucket says: the time until the next call
// fits, never a guess.

import { TokenBucket } from './token-bucket.js';

export interface QuotaLimits {
  requestsPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
  /** bucket sizes; default one minute's worth */
  requestsBurst?: number | undefined;
  tokensBurst?: number | undefined;
}

export type QuotaAxis = 'requests' | 'tokens';

/** Why the next call does not fit, and when it will. */
export interface QuotaShortfall {
  axis: QuotaAxis;
  /** the configured rate (per minute) */
  limitPerMinute: number;
  /** what the next call needs on this axis */
  needed: number;
  /** what the bucket holds now (negative while in debt) */
  available: number;
  /** ms until `needed` fits */
  retryAfterMs: number;
}

export interface ReserveResult {
  granted: boolean;
  /** 0 when granted; otherwise ms until the same reservation would be granted */
  retryAfterMs: number;
  /** the axis that refused (the one with the longer wait), when refused */
  shortfall?: QuotaShortfall;
  /** tokens left on each axis after the reservation (undefined = no limit on that axis) */
  remainingRequests?: number;
  remainingTokens?: number;
}

const MINUTE_MS = 60_000;
/** weight of the newest call in the running estimate of a call's size */
const CALL_SIZE_WEIGHT = 0.2;

interface TenantBuckets {
  requests?: TokenBucket;
  tokens?: TokenBucket;
  /** the size of the tenant's next call: its latest pre-flight estimate, else a running mean of its calls */
  nextCallTokens: number;
  lastPreflight: number;
  lastUsedMs: number;
}

export class TenantQuotas {
  readonly #tenants = new Map<string, TenantBuckets>();

  constructor(private readonly now: () => number) {}

  /**
   * A model call the spans reported. `requests` is 0 for a call the SDK had already reserved.
   * `preflightTokens` (the SDK's estimate, -1 when absent) sizes the next call. `at`: when it was seen.
   */
  debit(tenantId: string, limits: QuotaLimits, requests: number, tokens: number, observedCallTokens: number, preflightTokens = -1, at = this.now()): void {
    const buckets = this.#buckets(tenantId, limits, at);
    if (buckets === undefined) return;
    if (requests > 0) buckets.requests?.take(requests, at);
    if (tokens > 0) buckets.tokens?.take(tokens, at);
    if (preflightTokens > 0) {
      // The SDK's own estimate is the best guess of the next call's size.
      buckets.lastPreflight = preflightTokens;
      buckets.nextCallTokens = preflightTokens;
    } else if (observedCallTokens > 0 && buckets.lastPreflight <= 0) {
      const n = buckets.nextCallTokens;
      buckets.nextCallTokens = n <= 0 ? observedCallTokens : n + CALL_SIZE_WEIGHT * (observedCallTokens - n);
    }
  }

  /** Grants (and debits) one call of `tokens` tokens, or says when it would fit. */
  reserve(tenantId: string, limits: QuotaLimits, tokens: number): ReserveResult {
    if (!Number.isFinite(tokens) || tokens < 0) throw new RangeError(`reserve: tokens must be 0 or more, got ${tokens}`);
    const at = this.now();
    const buckets = this.#buckets(tenantId, limits, at);
    if (buckets === undefined) return { granted: true, retryAfterMs: 0 };
    const shortfalls = this.#shortfalls(buckets, limits, 1, tokens, at);
    if (shortfalls.length > 0) {
      const shortfall = longest(shortfalls);
      return { granted: false, retryAfterMs: shortfall.retryAfterMs, shortfall, ...remaining(buckets, at) };
    }
    buckets.requests?.take(1, at);
    // A reservation larger than the bucket goes once the bucket is full, and leaves it in debt.
    buckets.tokens?.take(tokens, at);
    if (tokens > 0) buckets.nextCallTokens = tokens;
    return { granted: true, retryAfterMs: 0, ...remaining(buckets, at) };
  }

  /** Whether the tenant's next call (of its usual size) fits now; the longest shortfall if not. */
  shortfall(tenantId: string, limits: QuotaLimits): QuotaShortfall | null {
    const at = this.now();
    const buckets = this.#buckets(tenantId, limits, at);
    if (buckets === undefined) return null;
    const shortfalls = this.#shortfalls(buckets, limits, 1, Math.max(1, buckets.nextCallTokens), at);
    return shortfalls.length === 0 ? null : longest(shortfalls);
  }

  /** Levels for the API and tests (undefined = no limit on that axis). */
  levels(tenantId: string): { requests?: number; tokens?: number; nextCallTokens: number } | undefined {
    const buckets = this.#tenants.get(tenantId);
    if (buckets === undefined) return undefined;
    const at = this.now();
    return {
      ...(buckets.requests ? { requests: buckets.requests.level(at) } : {}),
      ...(buckets.tokens ? { tokens: buckets.tokens.level(at) } : {}),
      nextCallTokens: buckets.nextCallTokens,
    };
  }

  /** Drops tenants idle this long whose buckets are full again (they would start full anyway). */
  evictIdle(idleMs: number): void {
    const at = this.now();
    for (const [tenantId, b] of this.#tenants) {
      if (at - b.lastUsedMs < idleMs) continue;
      const full = (!b.requests || b.requests.level(at) >= b.requests.capacity) && (!b.tokens || b.tokens.level(at) >= b.tokens.capacity);
      if (full) this.#tenants.delete(tenantId);
    }
  }

  #shortfalls(buckets: TenantBuckets, limits: QuotaLimits, requests: number, tokens: number, at: number): QuotaShortfall[] {
    const out: QuotaShortfall[] = [];
    if (buckets.requests && limits.requestsPerMinute !== undefined) {
      const wait = buckets.requests.timeUntil(requests, at);
      if (wait > 0) out.push({ axis: 'requests', limitPerMinute: limits.requestsPerMinute, needed: requests, available: buckets.requests.level(at), retryAfterMs: wait });
    }
    if (buckets.tokens && limits.tokensPerMinute !== undefined) {
      const wait = buckets.tokens.timeUntil(tokens, at);
      if (wait > 0) out.push({ axis: 'tokens', limitPerMinute: limits.tokensPerMinute, needed: tokens, available: buckets.tokens.level(at), retryAfterMs: wait });
    }
    return out;
  }

  #buckets(tenantId: string, limits: QuotaLimits, at: number): TenantBuckets | undefined {
    const { requestsPerMinute: rpm, tokensPerMinute: tpm } = limits;
    let buckets = this.#tenants.get(tenantId);
    if (rpm === undefined && tpm === undefined) {
      if (buckets !== undefined) this.#tenants.delete(tenantId);
      return undefined;
    }
    if (buckets === undefined) {
      buckets = { nextCallTokens: 0, lastPreflight: -1, lastUsedMs: at };
      this.#tenants.set(tenantId, buckets);
    }
    buckets.lastUsedMs = at;
    buckets.requests = fitBucket(buckets.requests, rpm, limits.requestsBurst, at);
    buckets.tokens = fitBucket(buckets.tokens, tpm, limits.tokensBurst, at);
    return buckets;
  }
}

/** The bucket for these limits: the same one when they did not change, else a new one keeping the level. */
function fitBucket(bucket: TokenBucket | undefined, perMinute: number | undefined, burst: number | undefined, at: number): TokenBucket | undefined {
  if (perMinute === undefined) return undefined;
  const settings = { capacity: burst ?? perMinute, refillAmount: perMinute, refillPeriodMs: MINUTE_MS };
  if (bucket?.sameSettings(settings)) return bucket;
  // A changed limit keeps what was spent: no free refill by editing the policy.
  const level = bucket === undefined ? settings.capacity : Math.min(settings.capacity, bucket.level(at));
  return new TokenBucket(settings, at, level);
}

function longest(shortfalls: QuotaShortfall[]): QuotaShortfall {
  return shortfalls.reduce((a, b) => (b.retryAfterMs > a.retryAfterMs ? b : a));
}

function remaining(buckets: TenantBuckets, at: number): { remainingRequests?: number; remainingTokens?: number } {
  return {
    ...(buckets.requests ? { remainingRequests: Math.floor(buckets.requests.level(at)) } : {}),
    ...(buckets.tokens ? { remainingTokens: Math.floor(buckets.tokens.level(at)) } : {}),
  };
}
