import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CallRing, combinedErrorRatio } from '../../src/windows/call-ring.js';

describe('CallRing', () => {
  it('keeps the last N outcomes when it wraps', () => {
    const r = new CallRing(3);
    r.push(true);
    r.push(true);
    r.push(false);
    expect([r.count, r.errors]).toEqual([3, 2]);
    r.push(false); // the first error drops out
    expect([r.count, r.errors]).toEqual([3, 1]);
    r.push(false);
    expect([r.count, r.errors]).toEqual([3, 0]);
    expect(r.outcomes()).toEqual([false, false, false]);
  });

  it('matches a naive last-N model across word boundaries (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.array(fc.boolean(), { maxLength: 400 }), (n, pushes) => {
        const r = new CallRing(n);
        for (const e of pushes) r.push(e);
        const last = pushes.slice(-n);
        expect(r.count).toBe(last.length);
        expect(r.errors).toBe(last.filter(Boolean).length);
        expect(r.outcomes()).toEqual(last);
      }),
    );
  });

  it('resizes keeping the most recent outcomes', () => {
    const r = new CallRing(5);
    for (const e of [true, false, true, true, false]) r.push(e);
    r.resize(2);
    expect(r.outcomes()).toEqual([true, false]);
    r.resize(4);
    r.push(true);
    expect(r.outcomes()).toEqual([true, false, true]);
    expect(r.errors).toBe(2);
  });
});

describe('combinedErrorRatio', () => {
  it('is 0 until a window holds minCalls calls, then the larger ratio', () => {
    const ring = new CallRing(4);
    ring.push(true);
    ring.push(false);
    expect(combinedErrorRatio(ring, 2, 1, 3)).toBe(0);
    ring.push(false);
    expect(combinedErrorRatio(ring, 2, 1, 3)).toBeCloseTo(1 / 3, 12); // only the ring qualifies
    expect(combinedErrorRatio(ring, 10, 8, 3)).toBe(0.8); // the 60 s window is larger
    expect(combinedErrorRatio(null, 0, 0, 0)).toBe(0); // no division by zero
  });
});
