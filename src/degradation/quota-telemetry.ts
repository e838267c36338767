// Quota telemetry per provider key, from the rate-limit headers recorded on spans
// (x-ratelimit-remaining-* / x-ratelimit-limit-*, Anthropic's anthropic-ratelimit-*) and the 429s
// seen: utilization (the more used of the request and token axes), a level with WARN at 70 % and
// 90 % by default, and counts of each kind of 429.
//
// Two views: the key as every tenant's spans describe it (for dashboards and alerts; onLevel is told
// of its level changes) and each tenant's own view of the keys it uses, which is what that tenant's
// decisions read, so one tenant's spans never change another tenant's decisions.

import type { RateLimitClass, RateLimitKind } from './classify.js';
import type { QuotaTelemetrySettings } from './degradation-schema.js';

export type QuotaLevel = 'OK' | 'WARN' | 'CRITICAL' | 'EXHAUSTED';
export type QuotaAxisName = 'requests' | 'tokens';

export interface RateLimitHeaders {
  remainingRequests: number;
  limitRequests: number;
  remainingTokens: number;
  limitTokens: number;
}

export interface KeyQuota {
  key: string;
  provider: string;
  /** -1 when unknown */
  remainingRequests: number;
  limitRequests: number;
  remainingTokens: number;
  limitTokens: number;
  /** 0..1, the more used axis; -1 when no limit is known */
  utilization: number;
  axis: QuotaAxisName | '';
  level: QuotaLevel;
  /** when headers last described the key (ms since the epoch); 0 never */
  updatedAt: number;
  /** 429s seen, by kind */
  rateLimited: Record<RateLimitKind, number>;
  lastRateLimit: { kind: RateLimitKind; at: number; resetAt: number; evidence: string } | null;
}

export interface QuotaLevelChange {
  key: string;
  provider: string;
  from: QuotaLevel;
  to: QuotaLevel;
  utilization: number;
  axis: QuotaAxisName | '';
  at: number;
}

export class QuotaTelemetry {
  readonly #keys = new Map<string, KeyQuota>();
  readonly #tenants = new Map<string, { lastSeenMs: number; keys: Map<string, KeyQuota> }>();

  constructor(
    private readonly now: () => number,
    private readonly settings: () => QuotaTelemetrySettings,
    private readonly onLevel?: (change: QuotaLevelChange) => void,
  ) {}

  /** Headers seen on a call of `tenantId` that drew on `key`, as of `at`. Absent values are -1. */
  observe(tenantId: string, key: string, provider: string, headers: RateLimitHeaders, at = this.now()): void {
    if (headers.remainingRequests < 0 && headers.remainingTokens < 0 && headers.limitRequests < 0 && headers.limitTokens < 0) return;
    this.#update(this.#global(key, provider), headers, at, true);
    this.#update(this.#tenantKey(tenantId, key, provider, at), headers, at, false);
  }

  /** A 429 on a call of `tenantId` that drew on `key`; `resetAt` is -1 when unknown. */
  rateLimited(tenantId: string, key: string, provider: string, cls: RateLimitClass, resetAt: number): void {
    const at = this.now();
    for (const quota of [this.#global(key, provider), this.#tenantKey(tenantId, key, provider, at)]) {
      quota.rateLimited[cls.kind]++;
      quota.lastRateLimit = { kind: cls.kind, at, resetAt, evidence: cls.evidence };
    }
    this.#relevel(this.#global(key, provider), at, true);
  }

  /** A call on `key` that started at `startedAt` succeeded (seen `at`): a 429 seen before it no longer exhausts the key. */
  quotaBack(tenantId: string, key: string, startedAt: number, at = this.now()): void {
    // Called for every successful model call: no array of the two quotas to walk.
    const global = this.#keys.get(key);
    if (global !== undefined && clearRateLimit(global, startedAt, at)) this.#relevel(global, at, true);
    const own = this.#tenants.get(tenantId)?.keys.get(key);
    if (own !== undefined) clearRateLimit(own, startedAt, at);
  }

  /** Every key as all tenants' spans describe it, levels as of now. */
  keys(): KeyQuota[] {
    const at = this.now();
    return [...this.#keys.values()].map((q) => this.#current(q, at));
  }

  /** The keys a tenant's own spans describe, levels as of now. */
  tenantKeys(tenantId: string): KeyQuota[] {
    const at = this.now();
    const tenant = this.#tenants.get(tenantId);
    return tenant === undefined ? [] : [...tenant.keys.values()].map((q) => this.#current(q, at));
  }

  /** The tenant's most used fresh key at WARN or above among those `relevant` accepts; null if none. */
  tenantWarning(tenantId: string, relevant: (key: string, provider: string) => boolean): KeyQuota | null {
    let worst: KeyQuota | null = null;
    for (const quota of this.tenantKeys(tenantId)) {
      if (quota.level === 'OK' || quota.utilization < 0 || !relevant(quota.key, quota.provider)) continue;
      if (worst === null || quota.utilization > worst.utilization) worst = quota;
    }
    return worst;
  }

  /** When a tenant's fresh headers go stale (a WARN based on them then ends); null if none. */
  nextStaleAt(tenantId: string): number | null {
    const tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) return null;
    const at = this.now();
    const staleAfter = this.settings().staleAfterMs;
    let next: number | null = null;
    for (const quota of tenant.keys.values()) {
      const staleAt = quota.updatedAt + staleAfter;
      if (quota.updatedAt > 0 && staleAt > at && (next === null || staleAt < next)) next = staleAt;
    }
    return next;
  }

  evictIdle(idleMs: number): void {
    const at = this.now();
    for (const [tenantId, tenant] of this.#tenants) if (at - tenant.lastSeenMs >= idleMs) this.#tenants.delete(tenantId);
    for (const [key, quota] of this.#keys) if (at - Math.max(quota.updatedAt, quota.lastRateLimit?.at ?? 0) >= idleMs) this.#keys.delete(key);
  }

  #update(quota: KeyQuota, headers: RateLimitHeaders, at: number, notify: boolean): void {
    if (headers.remainingRequests >= 0) quota.remainingRequests = headers.remainingRequests;
    if (headers.limitRequests >= 0) quota.limitRequests = headers.limitRequests;
    if (headers.remainingTokens >= 0) quota.remainingTokens = headers.remainingTokens;
    if (headers.limitTokens >= 0) quota.limitTokens = headers.limitTokens;
    quota.updatedAt = at;
    this.#relevel(quota, at, notify);
  }

  #relevel(quota: KeyQuota, at: number, notify: boolean): void {
    const before = quota.level;
    Object.assign(quota, this.#current(quota, at));
    if (notify && before !== quota.level) {
      this.onLevel?.({ key: quota.key, provider: quota.provider, from: before, to: quota.level, utilization: quota.utilization, axis: quota.axis, at });
    }
  }

  /** Utilization and level as of `at`: stale headers say nothing, a 429 not yet reset says EXHAUSTED. */
  #current(quota: KeyQuota, at: number): KeyQuota {
    const { warnAt, criticalAt, staleAfterMs } = this.settings();
    const fresh = quota.updatedAt > 0 && at - quota.updatedAt < staleAfterMs;
    let utilization = -1;
    let axis: QuotaAxisName | '' = '';
    let exhausted = false;
    if (fresh) {
      for (const [name, remaining, limit] of [
        ['requests', quota.remainingRequests, quota.limitRequests],
        ['tokens', quota.remainingTokens, quota.limitTokens],
      ] as const) {
        if (remaining === 0) exhausted = true;
        if (limit <= 0 || remaining < 0) continue;
        const used = Math.min(1, Math.max(0, 1 - remaining / limit));
        if (used > utilization) {
          utilization = used;
          axis = name;
        }
      }
    }
    const last = quota.lastRateLimit;
    if (last !== null && (last.resetAt > at || (last.resetAt < 0 && at - last.at < staleAfterMs))) exhausted = true;
    const level: QuotaLevel = exhausted ? 'EXHAUSTED' : utilization >= criticalAt ? 'CRITICAL' : utilization >= warnAt ? 'WARN' : 'OK';
    return { ...quota, rateLimited: { ...quota.rateLimited }, utilization: exhausted && utilization < 0 ? 1 : utilization, axis, level };
  }

  #global(key: string, provider: string): KeyQuota {
    let quota = this.#keys.get(key);
    if (quota === undefined) this.#keys.set(key, (quota = emptyQuota(key, provider)));
    return quota;
  }

  #tenantKey(tenantId: string, key: string, provider: string, at: number): KeyQuota {
    let tenant = this.#tenants.get(tenantId);
    if (tenant === undefined) this.#tenants.set(tenantId, (tenant = { lastSeenMs: at, keys: new Map() }));
    tenant.lastSeenMs = at;
    let quota = tenant.keys.get(key);
    if (quota === undefined) tenant.keys.set(key, (quota = emptyQuota(key, provider)));
    return quota;
  }
}

function emptyQuota(key: string, provider: string): KeyQuota {
  return {
    key,
    provider,
    remainingRequests: -1,
    limitRequests: -1,
    remainingTokens: -1,
    limitTokens: -1,
    utilization: -1,
    axis: '',
    level: 'OK',
    updatedAt: 0,
    rateLimited: { request_rate: 0, token_rate: 0, daily: 0 },
    lastRateLimit: null,
  };
}

/** Marks the quota's last 429 as over when a call started after it succeeded; true if it was still on. */
function clearRateLimit(quota: KeyQuota, startedAt: number, at: number): boolean {
  const last = quota.lastRateLimit;
  if (last === null || last.at >= startedAt || (last.resetAt >= 0 && last.resetAt <= at)) return false;
  last.resetAt = at;
  return true;
}
