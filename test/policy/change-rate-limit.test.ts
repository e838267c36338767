import { describe, expect, it } from 'vitest';
import { CHANGE_BURST, ChangeRateLimit, MAX_TRACKED_TENANTS } from '../../src/policy/change-rate-limit.js';

describe('ChangeRateLimit', () => {
  it('allows a burst, then one change per second, per tenant', () => {
    let now = 1_000_000;
    const limit = new ChangeRateLimit(() => now);
    for (let i = 0; i < CHANGE_BURST; i++) expect(limit.take('a')).toBeUndefined();
    expect(limit.take('a')).toBe(1);
    expect(limit.take('b')).toBeUndefined(); // another tenant has its own bucket
    now += 500;
    expect(limit.take('a')).toBe(1);
    now += 500;
    expect(limit.take('a')).toBeUndefined();
    expect(limit.take('a')).toBe(1);
    now += 3_600_000; // a quiet hour refills the burst, not more
    for (let i = 0; i < CHANGE_BURST; i++) expect(limit.take('a')).toBeUndefined();
    expect(limit.take('a')).toBe(1);
  });

  it('keeps a bounded number of buckets', () => {
    const limit = new ChangeRateLimit(() => 0);
    for (let i = 0; i < MAX_TRACKED_TENANTS + 50; i++) limit.take(`t-${i}`);
    expect(limit.size).toBeLessThanOrEqual(MAX_TRACKED_TENANTS);
  });
});
