import { describe, expect, it } from 'vitest';
import { TenantQuotas } from '../../src/degradation/tenant-quota.js';
import { TokenBucket } from '../../src/degradation/token-bucket.js';
import { Clock, T0 } from './helpers.js';

describe('TokenBucket', () => {
  // 10 per minute: one token every 6000 ms
  const perMinute = { capacity: 10, refillAmount: 10, refillPeriodMs: 60_000 };

  it('starts full and refuses what it does not hold, taking nothing', () => {
    const bucket = new TokenBucket(perMinute, T0);
    expect(bucket.level(T0)).toBe(10);
    expect(bucket.tryTake(10, T0)).toBe(true);
    expect(bucket.level(T0)).toBe(0);
    expect(bucket.tryTake(1, T0)).toBe(false);
    expect(bucket.level(T0)).toBe(0);
  });

  it('refills exactly at the boundary, not a millisecond before', () => {
    const bucket = new TokenBucket(perMinute, T0, 0);
    expect(bucket.timeUntil(1, T0)).toBe(6_000);
    expect(bucket.tryTake(1, T0 + 5_999)).toBe(false);
    expect(bucket.level(T0 + 5_999)).toBeCloseTo(0.99983, 5);
    expect(bucket.timeUntil(1, T0 + 5_999)).toBe(1);
    expect(bucket.tryTake(1, T0 + 6_000)).toBe(true);
    expect(bucket.level(T0 + 6_000)).toBe(0);
    expect(bucket.timeUntil(3, T0 + 6_000)).toBe(18_000);
  });

  it('rounds waits up with rates that do not divide the period', () => {
    // 7 per second: a token every 142.857 ms
    const bucket = new TokenBucket({ capacity: 7, refillAmount: 7, refillPeriodMs: 1_000 }, T0, 0);
    expect(bucket.timeUntil(1, T0)).toBe(143);
    expect(bucket.tryTake(1, T0 + 142)).toBe(false);
    expect(bucket.tryTake(1, T0 + 143)).toBe(true);
    // 143 ms gave 1.001 tokens; the 0.001 left over is kept, not lost to rounding
    expect(bucket.level(T0 + 143)).toBeCloseTo(0.001, 9);
    expect(bucket.timeUntil(1, T0 + 143)).toBe(143);
    expect(bucket.tryTake(1, T0 + 285)).toBe(false);
    expect(bucket.tryTake(1, T0 + 286)).toBe(true);
  });

  it('never refills past its capacity', () => {
    const bucket = new TokenBucket(perMinute, T0, 0);
    expect(bucket.level(T0 + 10 * 60_000)).toBe(10);
    expect(bucket.level(T0 + 365 * 86_400_000)).toBe(10);
  });

  it('runs into debt for calls already made, and the wait covers the debt', () => {
    const bucket = new TokenBucket(perMinute, T0);
    bucket.take(15, T0);
    expect(bucket.level(T0)).toBe(-5);
    expect(bucket.timeUntil(1, T0)).toBe(36_000);
    expect(bucket.tryTake(1, T0 + 35_999)).toBe(false);
    expect(bucket.tryTake(1, T0 + 36_000)).toBe(true);
  });

  it('makes a request larger than the bucket wait for a full bucket', () => {
    const bucket = new TokenBucket(perMinute, T0, 4);
    expect(bucket.timeUntil(25, T0)).toBe(36_000);
    expect(bucket.timeUntil(25, T0 + 36_000)).toBe(0);
  });

  it('ignores a clock that steps back', () => {
    const bucket = new TokenBucket(perMinute, T0, 0);
    expect(bucket.level(T0 + 6_000)).toBe(1);
    expect(bucket.level(T0)).toBe(1);
    expect(bucket.level(T0 + 6_000)).toBe(1);
    expect(bucket.level(T0 + 12_000)).toBe(2);
  });

  it('refuses settings it cannot keep exact', () => {
    expect(() => new TokenBucket({ capacity: 0, refillAmount: 1, refillPeriodMs: 1 }, T0)).toThrow(RangeError);
    expect(() => new TokenBucket({ capacity: 1.5, refillAmount: 1, refillPeriodMs: 1 }, T0)).toThrow(RangeError);
    expect(() => new TokenBucket(perMinute, T0).take(-1, T0)).toThrow(RangeError);
  });
});

describe('TenantQuotas', () => {
  const limits = { requestsPerMinute: 60, tokensPerMinute: 6_000 };

  it('grants reservations until a bucket runs out, then says when the same one fits', () => {
    const clock = new Clock();
    const quotas = new TenantQuotas(clock.now);
    for (let i = 0; i < 6; i++) expect(quotas.reserve('t1', limits, 1_000).granted).toBe(true);
    const refused = quotas.reserve('t1', limits, 1_000);
    expect(refused.granted).toBe(false);
    expect(refused.shortfall?.axis).toBe('tokens');
    // 6000 tokens per minute refill 100 per second: 1000 tokens take 10 s
    expect(refused.retryAfterMs).toBe(10_000);
    expect(refused.remainingRequests).toBe(54);
    clock.advance(9_999);
    expect(quotas.reserve('t1', limits, 1_000).granted).toBe(false);
    clock.advance(1);
    expect(quotas.reserve('t1', limits, 1_000).granted).toBe(true);
  });

  it('answers with the axis that waits longest', () => {
    const clock = new Clock();
    const quotas = new TenantQuotas(clock.now);
    const tight = { requestsPerMinute: 2, tokensPerMinute: 6_000 };
    expect(quotas.reserve('t1', tight, 10).granted).toBe(true);
    expect(quotas.reserve('t1', tight, 10).granted).toBe(true);
    const refused = quotas.reserve('t1', tight, 10);
    expect(refused.shortfall?.axis).toBe('requests');
    expect(refused.retryAfterMs).toBe(30_000);
  });

  it('sizes the next call by the pre-flight estimate and reports the shortfall from the bucket', () => {
    const clock = new Clock();
    const quotas = new TenantQuotas(clock.now);
    quotas.debit('t1', limits, 1, 5_500, 5_500, 2_000);
    const shortfall = quotas.shortfall('t1', limits);
    expect(shortfall).toMatchObject({ axis: 'tokens', needed: 2_000, available: 500, limitPerMinute: 6_000 });
    // 1500 missing tokens at 100/s
    expect(shortfall?.retryAfterMs).toBe(15_000);
    clock.advance(15_000);
    expect(quotas.shortfall('t1', limits)).toBeNull();
  });

  it('keeps tenants apart and is unlimited without limits', () => {
    const quotas = new TenantQuotas(new Clock().now);
    quotas.debit('noisy', limits, 100, 100_000, 1_000);
    expect(quotas.shortfall('noisy', limits)).not.toBeNull();
    expect(quotas.shortfall('quiet', limits)).toBeNull();
    expect(quotas.reserve('quiet', {}, 1_000_000)).toEqual({ granted: true, retryAfterMs: 0 });
  });

  it('keeps what was spent when the limits change', () => {
    const clock = new Clock();
    const quotas = new TenantQuotas(clock.now);
    quotas.debit('t1', { requestsPerMinute: 10 }, 10, 0, 0);
    const raised = { requestsPerMinute: 600 };
    // still empty: raising the limit does not refill the bucket
    expect(quotas.shortfall('t1', raised)?.retryAfterMs).toBe(100);
  });
});
