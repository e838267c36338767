// The outcomes (ok / error) of the last N calls, as a bitset ring. The error count is kept
// incrementally, so the ratio is O(1). Words are plain small integers (30 bits each, V8 "Smi"s):
// a 100-call ring is four array slots instead of a typed array with its ~200 bytes of overhead.

const BITS_PER_WORD = 30;

/** An array of n zeros, allocated at its final size (push would over-allocate). */
function zeros(n: number): number[] {
  const a = new Array<number>(n);
  for (let i = 0; i < n; i++) a[i] = 0;
  return a;
}

export class CallRing {
  private words: number[];
  private capacity: number;
  /** next slot to write */
  private pos = 0;
  /** slots holding an outcome (<= capacity) */
  private filled = 0;
  private errorsInRing = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(1, Math.floor(capacity));
    this.words = zeros(Math.ceil(this.capacity / BITS_PER_WORD));
  }

  get size(): number {
    return this.capacity;
  }

  /** calls currently in the ring */
  get count(): number {
    return this.filled;
  }

  get errors(): number {
    return this.errorsInRing;
  }

  push(isError: boolean): void {
    const w = Math.floor(this.pos / BITS_PER_WORD);
    const bit = 1 << (this.pos % BITS_PER_WORD);
    const word = this.words[w] ?? 0;
    if (this.filled === this.capacity) {
      if (word & bit) this.errorsInRing--;
    } else {
      this.filled++;
    }
    this.words[w] = isError ? word | bit : word & ~bit;
    if (isError) this.errorsInRing++;
    this.pos = this.pos + 1 === this.capacity ? 0 : this.pos + 1;
  }

  /** Oldest to newest. */
  outcomes(): boolean[] {
    const out: boolean[] = [];
    const start = this.filled === this.capacity ? this.pos : 0;
    for (let k = 0; k < this.filled; k++) {
      const p = (start + k) % this.capacity;
      const word = this.words[Math.floor(p / BITS_PER_WORD)] ?? 0;
      out.push((word & (1 << (p % BITS_PER_WORD))) !== 0);
    }
    return out;
  }

  /** A new N (a policy change): keep the most recent min(count, N) outcomes. O(N), rare. */
  resize(capacity: number): void {
    const next = Math.max(1, Math.floor(capacity));
    if (next === this.capacity) return;
    const kept = this.outcomes().slice(-next);
    this.capacity = next;
    this.words = zeros(Math.ceil(next / BITS_PER_WORD));
    this.pos = 0;
    this.filled = 0;
    this.errorsInRing = 0;
    for (const e of kept) this.push(e);
  }
}

/**
 * The error ratio over the last N calls and over the last 60 s, the larger of the two; a window
 * counts only once it holds at least `minCalls` calls (minCalls below 1 counts as 1).
 */
export function combinedErrorRatio(
  ring: CallRing | null,
  callsInWindow: number,
  errorsInWindow: number,
  minCalls: number,
): number {
  const min = Math.max(1, minCalls);
  let ratio = 0;
  if (ring !== null && ring.count >= min) ratio = ring.errors / ring.count;
  if (callsInWindow >= min) ratio = Math.max(ratio, errorsInWindow / callsInWindow);
  return ratio;
}
