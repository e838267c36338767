import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LATENCY_RELATIVE_ERROR,
  LatencySketch,
  SLICE_SECONDS,
  SLICES,
} from '../../src/windows/latency-sketch.js';

/** The nearest-rank quantile of the exact data. */
function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

const TOLERANCE = LATENCY_RELATIVE_ERROR + 1e-9;

describe('LatencySketch', () => {
  it('p50 / p95 are within ~2 % of the exact sort (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 600_000, noNaN: true }), { minLength: 1, maxLength: 500 }),
        fc.integer({ min: 0, max: SLICES * SLICE_SECONDS - 1 }),
        (latencies, spreadSeconds) => {
          const sketch = new LatencySketch();
          const now = 10_000;
          // spread over the window (within the six slices of `now`)
          const first = now - (now % SLICE_SECONDS) - (SLICES - 1) * SLICE_SECONDS;
          latencies.forEach((v, i) => {
            sketch.add(Math.min(now, first + ((i * 7) % (spreadSeconds + 1))), v);
          });
          for (const q of [0.5, 0.95]) {
            const exact = exactQuantile(latencies, q);
            const approx = sketch.quantile(q, now);
            expect(Math.abs(approx - exact) / exact).toBeLessThanOrEqual(TOLERANCE);
          }
        },
      ),
    );
  });

  it('is 0 when empty and reports sub-millisecond latencies as 0.5 ms', () => {
    const sketch = new LatencySketch();
    expect(sketch.quantile(0.5, 100)).toBe(0);
    sketch.add(100, 0.2);
    expect(sketch.quantile(0.5, 100)).toBe(0.5);
  });

  it('forgets slices that left the window', () => {
    const sketch = new LatencySketch();
    sketch.add(1000, 1000); // slice 100
    sketch.add(1055, 10); // slice 105
    expect(sketch.count).toBe(2);
    expect(sketch.quantile(0.95, 1055)).toBeCloseTo(1000, -2);
    // slice 106 pushes slice 100 out; only the 10 ms call remains
    expect(sketch.quantile(0.95, 1060)).toBeCloseTo(10, 0);
    expect(sketch.count).toBe(1);
    expect(sketch.add(1000, 5)).toBe(false); // too old now
    expect(sketch.quantile(0.5, 2000)).toBe(0); // everything expired
  });

  it('accepts out-of-order latencies into their own slice', () => {
    const sketch = new LatencySketch();
    sketch.add(1059, 100);
    sketch.add(1010, 200); // older slice, still in the window
    expect(sketch.count).toBe(2);
    expect(sketch.quantile(0.5, 1059)).toBeCloseTo(100, -1);
    expect(sketch.quantile(1, 1059)).toBeCloseTo(200, -1);
  });
});
