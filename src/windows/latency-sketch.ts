// Latency quantiles over a recent window in bounded memory: a log-bucket histogram per 10 s time
// slice, six slices (50-60 s of history), plus a merged histogram kept incrementally (a slice
// leaving the window is subtracted from it), so an add is O(1) and a quantile reads one histogram.
//
// Buckets grow by GAMMA = 1.04 from 1 ms to 10 min; a quantile returns the geometric middle of its
// bucket, so it is within sqrt(1.04) - 1 ≈ 2 % of the exact nearest-rank value for latencies in
// [1 ms, 10 min]. Below 1 ms the answer is 0.5 ms; above 10 min, the last bucket's middle.
// Memory: 341 buckets × 7 histograms × 4 bytes ≈ 9.5 KB per provider or model window.

import { mod } from './window-time.js';

const GAMMA = 1.04;
const LOG_GAMMA = Math.log(GAMMA);
const MIN_MS = 1;
const MAX_MS = 600_000;
/** bucket 0 is [0, MIN_MS); bucket b >= 1 is [MIN_MS·γ^(b-1), MIN_MS·γ^b) */
export const LATENCY_BUCKETS = 1 + Math.ceil(Math.log(MAX_MS / MIN_MS) / LOG_GAMMA);
/** worst relative error of a quantile inside [1 ms, 10 min] */
export const LATENCY_RELATIVE_ERROR = Math.sqrt(GAMMA) - 1;

export const SLICE_SECONDS = 10;
export const SLICES = 6;

export function latencyBucket(ms: number): number {
  if (!(ms >= MIN_MS)) return 0; // also NaN
  const b = 1 + Math.floor(Math.log(ms / MIN_MS) / LOG_GAMMA);
  return b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1;
}

export function bucketMiddle(bucket: number): number {
  if (bucket <= 0) return MIN_MS / 2;
  return MIN_MS * Math.pow(GAMMA, bucket - 1) * Math.sqrt(GAMMA);
}

export class LatencySketch {
  /** SLICES histograms, then the merged one at offset SLICES * LATENCY_BUCKETS */
  private readonly counts = new Uint32Array((SLICES + 1) * LATENCY_BUCKETS);
  private readonly sliceTotals = new Uint32Array(SLICES);
  private total = 0;
  /** newest slice index (epoch second / SLICE_SECONDS) the ring covers */
  private head = Number.NEGATIVE_INFINITY;

  /** Move to the slice of `second`, dropping slices that left the window from the merged view. */
  advance(second: number): void {
    const slice = Math.floor(second / SLICE_SECONDS);
    if (slice <= this.head) return;
    if (slice - this.head >= SLICES) {
      this.counts.fill(0);
      this.sliceTotals.fill(0);
      this.total = 0;
    } else {
      const merged = SLICES * LATENCY_BUCKETS;
      for (let s = this.head + 1; s <= slice; s++) {
        const pos = mod(s, SLICES);
        if (this.sliceTotals[pos] === 0) continue;
        const base = pos * LATENCY_BUCKETS;
        for (let b = 0; b < LATENCY_BUCKETS; b++) {
          const c = this.counts[base + b] ?? 0;
          if (c !== 0) this.counts[merged + b] = (this.counts[merged + b] ?? 0) - c;
        }
        this.counts.fill(0, base, base + LATENCY_BUCKETS);
        this.total -= this.sliceTotals[pos] ?? 0;
        this.sliceTotals[pos] = 0;
      }
    }
    this.head = slice;
  }

  /** Record one latency ending at `second`; false when its slice has left the window. */
  add(second: number, latencyMs: number): boolean {
    const slice = Math.floor(second / SLICE_SECONDS);
    if (slice > this.head) this.advance(second);
    if (slice <= this.head - SLICES) return false;
    const pos = mod(slice, SLICES);
    const b = latencyBucket(latencyMs);
    const i = pos * LATENCY_BUCKETS + b;
    const m = SLICES * LATENCY_BUCKETS + b;
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.counts[m] = (this.counts[m] ?? 0) + 1;
    this.sliceTotals[pos] = (this.sliceTotals[pos] ?? 0) + 1;
    this.total++;
    return true;
  }

  /** latencies in the window as of the last advance */
  get count(): number {
    return this.total;
  }

  /**
   * Nearest-rank quantile (q in (0, 1]) of the window as of `second` (advancing to it first);
   * 0 when the window is empty.
   */
  quantile(q: number, second: number): number {
    this.advance(second);
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    const merged = SLICES * LATENCY_BUCKETS;
    let seen = 0;
    for (let b = 0; b < LATENCY_BUCKETS; b++) {
      seen += this.counts[merged + b] ?? 0;
      if (seen >= rank) return bucketMiddle(b);
    }
    return bucketMiddle(LATENCY_BUCKETS - 1);
  }
}
