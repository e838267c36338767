import { describe, expect, it } from 'vitest';
import { RecentDeliveries } from '../../src/app/recent-deliveries.js';
import { blankAgentSpan } from '../helpers/agent-span.js';

const span = (tenantId: string, spanId: string, extra: Partial<ReturnType<typeof blankAgentSpan>> = {}) =>
  blankAgentSpan({ tenantId, traceId: 'a'.repeat(32), spanId, ...extra });

describe('RecentDeliveries', () => {
  it('recognizes the same spans of the same tenants, and nothing else', () => {
    const base = RecentDeliveries.digest([span('t1', '1'.repeat(16)), span('t1', '2'.repeat(16))]);
    expect(RecentDeliveries.digest([span('t1', '1'.repeat(16), { name: 'renamed', inputTokens: 9 }), span('t1', '2'.repeat(16))])).toBe(base);
    // Another tenant's spans with the same ids are other spans: a tenant cannot mute another's.
    expect(RecentDeliveries.digest([span('t2', '1'.repeat(16)), span('t1', '2'.repeat(16))])).not.toBe(base);
    expect(RecentDeliveries.digest([span('t1', '2'.repeat(16)), span('t1', '1'.repeat(16))])).not.toBe(base);
    expect(RecentDeliveries.digest([span('t1', '1'.repeat(16))])).not.toBe(base);
    // The separator keeps ids from running into the tenant: ('t', 'x…') is not ('tx', '…').
    expect(RecentDeliveries.digest([span('t', 'x'.repeat(16))])).not.toBe(RecentDeliveries.digest([span('tx', 'x'.repeat(16))]));
  });

  it('moves a delivery from new to observed to committed, and forgets it after the ttl or over the cap', () => {
    let now = 0;
    const recent = new RecentDeliveries({ ttlMs: 1_000, maxEntries: 2, now: () => now });
    expect(recent.earlier('a')).toBe('new');
    recent.observed('a');
    expect(recent.earlier('a')).toBe('observed');
    recent.committed('a');
    expect(recent.earlier('a')).toBe('committed');
    now = 1_000;
    expect(recent.earlier('a')).toBe('new');
    recent.committed('b');
    recent.observed('c');
    recent.observed('d');
    expect(recent.earlier('b')).toBe('new'); // the oldest went over the cap
    expect(recent.size).toBeLessThanOrEqual(2);
    expect(recent.earlier('d')).toBe('observed');
  });
});
