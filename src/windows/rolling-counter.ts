// A ring of per-second buckets covering the last `seconds` seconds up to `head`, the newest second
// written. Each bucket holds some "amount" columns (floating point: tokens, USD) and some "count"
// columns (integers: calls, errors), both views over ONE ArrayBuffer: a typed array costs ~180
// bytes of bookkeeping besides its data, which matters at 100k runs.
//
// Buckets are reset lazily: moving the head forward zeroes only the buckets it passes over (at
// most the whole ring), so an add is O(1) amortized and a sum never reads more than the ring.

export interface RollingCounterLayout {
  amounts: number;
  /** Float32 halves the memory (integers stay exact to 2^24 per bucket); Float64 for aggregates */
  amountType: Float32ArrayConstructor | Float64ArrayConstructor;
  counts: number;
  /** Uint16 saturates at 65 535 per second (plenty for one run); Uint32 for aggregates */
  countType: Uint16ArrayConstructor | Uint32ArrayConstructor;
}

export class RollingCounter {
  readonly seconds: number;
  protected readonly amountColumns: number;
  protected readonly countColumns: number;
  protected readonly amounts: Float32Array | Float64Array;
  protected readonly counts: Uint16Array | Uint32Array;
  private readonly countLimit: number;
  /** newest second the ring covers; it holds seconds (head - seconds, head] */
  protected head = Number.NEGATIVE_INFINITY;

  constructor(layout: RollingCounterLayout, seconds = 60) {
    this.seconds = seconds;
    this.amountColumns = layout.amounts;
    this.countColumns = layout.counts;
    const amountBytes = seconds * layout.amounts * layout.amountType.BYTES_PER_ELEMENT;
    const countBytes = seconds * layout.counts * layout.countType.BYTES_PER_ELEMENT;
    // Amount elements are at least as wide as count elements, so the count view stays aligned.
    const buffer = new ArrayBuffer(amountBytes + countBytes);
    this.amounts = new layout.amountType(buffer, 0, seconds * layout.amounts);
    this.counts = new layout.countType(buffer, amountBytes, seconds * layout.counts);
    this.countLimit = 2 ** (8 * layout.countType.BYTES_PER_ELEMENT) - 1;
  }

  /** The newest second written (-Infinity before the first write). */
  get newestSecond(): number {
    return this.head;
  }

  /** Move the head forward to `second`, zeroing the buckets of the seconds that left the ring. */
  advance(second: number): void {
    if (second <= this.head) return;
    if (second - this.head >= this.seconds) {
      this.amounts.fill(0);
      this.counts.fill(0);
    } else {
      // A few elements per bucket: plain loops beat fill()'s call overhead.
      const a = this.amountColumns;
      const c = this.countColumns;
      for (let s = this.head + 1; s <= second; s++) {
        const bucket = this.bucketOf(s);
        for (let i = bucket * a, end = i + a; i < end; i++) this.amounts[i] = 0;
        for (let i = bucket * c, end = i + c; i < end; i++) this.counts[i] = 0;
      }
    }
    this.head = second;
  }

  /**
   * The bucket index of `second` for writing (a newer second advances the ring first), or -1 when
   * the second has already left the ring. Compute once per span, then add to several columns.
   */
  slot(second: number): number {
    if (second > this.head) this.advance(second);
    return second > this.head - this.seconds ? this.bucketOf(second) : -1;
  }

  addAmountAt(slot: number, column: number, value: number): void {
    const i = slot * this.amountColumns + column;
    this.amounts[i] = (this.amounts[i] ?? 0) + value;
  }

  /** Saturates at the count type's maximum instead of wrapping. */
  addCountAt(slot: number, column: number, n = 1): void {
    const i = slot * this.countColumns + column;
    this.counts[i] = Math.min(this.countLimit, (this.counts[i] ?? 0) + n);
  }

  /** Add to an amount column at `second`; false (nothing added) when the second is too old. */
  addAmount(second: number, column: number, value: number): boolean {
    const slot = this.slot(second);
    if (slot >= 0) this.addAmountAt(slot, column, value);
    return slot >= 0;
  }

  /** Add to a count column at `second`; false (nothing added) when the second is too old. */
  addCount(second: number, column: number, n = 1): boolean {
    const slot = this.slot(second);
    if (slot >= 0) this.addCountAt(slot, column, n);
    return slot >= 0;
  }

  /** Sum of an amount column over the seconds (refSecond - lastSeconds, refSecond]. */
  sumAmount(column: number, refSecond: number, lastSeconds: number): number {
    let total = 0;
    const [from, to] = this.readRange(refSecond, lastSeconds);
    for (let s = from; s <= to; s++) total += this.amounts[this.bucketOf(s) * this.amountColumns + column] ?? 0;
    return total;
  }

  /** Sum of a count column over the seconds (refSecond - lastSeconds, refSecond]. */
  sumCount(column: number, refSecond: number, lastSeconds: number): number {
    let total = 0;
    const [from, to] = this.readRange(refSecond, lastSeconds);
    for (let s = from; s <= to; s++) total += this.counts[this.bucketOf(s) * this.countColumns + column] ?? 0;
    return total;
  }

  /** The seconds both asked for and still in the ring, [from, to] (empty when from > to). */
  protected readRange(refSecond: number, lastSeconds: number): [number, number] {
    return [Math.max(refSecond - lastSeconds + 1, this.head - this.seconds + 1), Math.min(refSecond, this.head)];
  }

  /** Non-negative modulo, so (test) clocks near or below 0 still index the ring. */
  protected bucketOf(second: number): number {
    const r = second % this.seconds;
    return r < 0 ? r + this.seconds : r;
  }
}
