// A token bucket in exact integer arithmetic, on a caller's clock.
//
// The level is kept in "token-milliseconds of the period": level × periodMs. Refill adds
// `refillAmount` of those per elapsed millisecond, so with whole-number settings and a whole-ms
// clock every refill, take and wait is exact: the bucket that refills 1 token every 6000 ms has
// 0.9998 tokens at 5999 ms and exactly 1 at 6000 ms, never 0.99999999 by rounding.

export interface TokenBucketSettings {
  /** the most the bucket holds (the largest burst) */
  capacity: number;
  /** tokens added per period */
  refillAmount: number;
  /** the period, ms (60 000 for "per minute") */
  refillPeriodMs: number;
}

export class TokenBucket {
  readonly capacity: number;
  readonly refillAmount: number;
  readonly refillPeriodMs: number;
  /** level × periodMs; negative while in debt */
  #scaled: number;
  /** clock time of #scaled */
  #at: number;

  constructor(settings: TokenBucketSettings, now: number, initialTokens = settings.capacity) {
    this.capacity = wholePositive('capacity', settings.capacity);
    this.refillAmount = wholePositive('refillAmount', settings.refillAmount);
    this.refillPeriodMs = wholePositive('refillPeriodMs', settings.refillPeriodMs);
    const maxScaled = this.capacity * this.refillPeriodMs;
    if (!Number.isSafeInteger(maxScaled)) throw new RangeError('token bucket: capacity × refillPeriodMs is too large to keep exact');
    this.#scaled = Math.min(maxScaled, Math.round(initialTokens * this.refillPeriodMs));
    this.#at = Math.floor(now);
  }

  /** The same settings? (A policy reload that changes them builds a new bucket.) */
  sameSettings(settings: TokenBucketSettings): boolean {
    return (
      settings.capacity === this.capacity &&
      settings.refillAmount === this.refillAmount &&
      settings.refillPeriodMs === this.refillPeriodMs
    );
  }

  /** Tokens available now (fractional; negative while in debt). */
  level(now: number): number {
    this.#refill(now);
    return this.#scaled / this.refillPeriodMs;
  }

  /** Takes `n` tokens if they are all there; otherwise takes nothing. */
  tryTake(n: number, now: number): boolean {
    this.#refill(now);
    const need = this.#need(n);
    if (this.#scaled < need) return false;
    this.#scaled -= need;
    return true;
  }

  /** Takes `n` tokens whether or not they are there: what was already spent is owed (debt). */
  take(n: number, now: number): void {
    this.#refill(now);
    this.#scaled -= this.#need(n);
  }

  /** Gives `n` tokens back (an estimate that turned out too high), up to the capacity. */
  giveBack(n: number, now: number): void {
    this.#refill(now);
    this.#scaled = Math.min(this.capacity * this.refillPeriodMs, this.#scaled + this.#need(n));
  }

  /**
   * Milliseconds until `n` tokens are available (0 when they are now). A request larger than the
   * bucket can never fit: it waits for a full bucket (and then runs it into debt).
   */
  timeUntil(n: number, now: number): number {
    this.#refill(now);
    const need = this.#need(Math.min(n, this.capacity));
    const missing = need - this.#scaled;
    return missing <= 0 ? 0 : Math.ceil(missing / this.refillAmount);
  }

  #need(n: number): number {
    if (!Number.isFinite(n) || n < 0) throw new RangeError(`token bucket: cannot take ${n} tokens`);
    return Math.round(n * this.refillPeriodMs);
  }

  #refill(now: number): void {
    const at = Math.floor(now);
    // A clock that steps back neither refills nor moves the reference time back.
    if (at <= this.#at) return;
    const full = this.capacity * this.refillPeriodMs;
    const elapsed = at - this.#at;
    // elapsed × refillAmount can pass 2^53 after a long idle time; the bucket is full long before.
    this.#scaled = elapsed >= Math.ceil((full - this.#scaled) / this.refillAmount) ? full : this.#scaled + elapsed * this.refillAmount;
    this.#at = at;
  }
}

function wholePositive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`token bucket: ${name} must be a positive whole number, got ${value}`);
  return value;
}
