import { describe, expect, it } from 'vitest';
import { RollingCounter } from '../../src/windows/rolling-counter.js';

const layout = { amounts: 1, amountType: Float64Array, counts: 1, countType: Uint16Array } as const;

describe('RollingCounter', () => {
  it('sums the last 10 s and 60 s exactly at the edges', () => {
    const c = new RollingCounter(layout, 60);
    for (let s = 1000; s < 1060; s++) c.addAmount(s, 0, 1); // one per second, 1000..1059
    const ref = 1059;
    expect(c.sumAmount(0, ref, 10)).toBe(10); // 1050..1059
    expect(c.sumAmount(0, ref, 60)).toBe(60); // 1000..1059
    c.addAmount(1049, 0, 100); // just outside the 10 s window
    expect(c.sumAmount(0, ref, 10)).toBe(10);
    expect(c.sumAmount(0, ref, 60)).toBe(160);
  });

  it('rolls buckets over: a second reuses the slot of the second 60 s earlier, zeroed', () => {
    const c = new RollingCounter(layout, 60);
    c.addAmount(1000, 0, 5);
    c.addAmount(1030, 0, 7);
    c.addAmount(1060, 0, 1); // same slot as 1000: 1000 leaves the ring
    expect(c.sumAmount(0, 1060, 60)).toBe(8);
    c.addAmount(1090, 0, 2); // 1030 leaves too
    expect(c.sumAmount(0, 1090, 60)).toBe(3);
  });

  it('resets everything after a gap longer than the ring', () => {
    const c = new RollingCounter(layout, 60);
    for (let s = 0; s < 60; s++) c.addCount(s, 0);
    c.addCount(500, 0);
    expect(c.sumCount(0, 500, 60)).toBe(1);
  });

  it('rejects seconds that already left the ring', () => {
    const c = new RollingCounter(layout, 60);
    c.addCount(1000, 0);
    expect(c.addCount(940, 0)).toBe(false); // 1000 - 60
    expect(c.addCount(941, 0)).toBe(true);
    expect(c.sumCount(0, 1000, 60)).toBe(2);
  });

  it('reads relative to a later reference without mutating, ignoring stale buckets', () => {
    const c = new RollingCounter(layout, 60);
    c.addAmount(1000, 0, 3);
    c.addAmount(1005, 0, 4);
    expect(c.sumAmount(0, 1010, 10)).toBe(4); // 1001..1010
    expect(c.sumAmount(0, 1064, 60)).toBe(4); // 1005..1064
    expect(c.sumAmount(0, 1065, 60)).toBe(0);
    expect(c.newestSecond).toBe(1005);
  });

  it('saturates Uint16 counts instead of wrapping', () => {
    const c = new RollingCounter(layout, 60);
    c.addCount(1, 0, 65_000);
    c.addCount(1, 0, 1_000);
    expect(c.sumCount(0, 1, 60)).toBe(65_535);
  });

  it('handles seconds near and below zero', () => {
    const c = new RollingCounter(layout, 60);
    c.addAmount(-3, 0, 1);
    c.addAmount(2, 0, 1);
    expect(c.sumAmount(0, 2, 10)).toBe(2);
  });
});
