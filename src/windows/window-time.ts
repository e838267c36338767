// Time constants and conversions shared by every window. Spans carry epoch nanoseconds as bigint;
// the windows work in epoch milliseconds (doubles) and bucket by whole epoch seconds.

/** The long rolling window: rates "per minute" and the 60 s token velocity. */
export const WINDOW_SECONDS = 60;
/** The short rolling window of the 10 s token velocity. */
export const SHORT_WINDOW_SECONDS = 10;
/** A span ending more than this past the store's clock is clamped to the clock. */
export const FUTURE_TOLERANCE_MS = 5_000;

/**
 * Epoch ns -> epoch ms. Number(ns) rounds to a multiple of 256 ns at today's epoch, far below what
 * the windows resolve, and unlike bigint arithmetic it allocates nothing on the per-span path.
 */
export function nanosToMillis(ns: bigint): number {
  return Number(ns) / 1e6;
}

/** The whole epoch second a millisecond instant falls in. */
export function secondOf(ms: number): number {
  return Math.floor(ms / 1000);
}

/** Non-negative modulo: bucket positions must stay valid for (test) clocks near or below 0. */
export function mod(n: number, m: number): number {
  const r = n % m;
  return r < 0 ? r + m : r;
}
