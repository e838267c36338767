import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nanosToMillis } from '../../src/windows/window-time.js';

const reference = (ns: bigint): number => Number(ns) / 1e6;

describe('nanosToMillis', () => {
  it('equals Number(ns) / 1e6 at the edges of the uint64 range and of double precision', () => {
    const edges = [0n, 1n, 999_999n, 1_000_000n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
    // Doubles are 256 ns apart from 2^60 ns (2006) to 2^61: ties round to even, and next to them.
    const tie = 2n ** 60n + 128n;
    const halfways = [tie, tie + 256n, tie - 1n, tie + 1n, BigInt(Date.UTC(2026, 10, 27)) * 1_000_000n + 123n];
    for (const ns of [...edges, ...halfways]) expect(nanosToMillis(ns), String(ns)).toBe(reference(ns));
  });

  it('equals Number(ns) / 1e6 for any uint64', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (ns) => nanosToMillis(ns) === reference(ns)), { numRuns: 5_000 });
  });
});
