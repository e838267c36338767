import { tokenDigest } from './token-digest.js';

interface Failures {
  count: number;
  since: number;
}

/**
 * Failed authentications are counted per address; past the limit, that address's requests are
 * answered 429 for the rest of the window without their credential being checked, so a guesser
 * cannot keep testing guesses. A credential that has already authenticated from that address
 * (an agent behind the same Collector or NAT) is still checked, so others' wrong guesses never
 * lock it out; a guess reaches the token table only if it equals such a credential exactly.
 *
 * Both maps are bounded without forgetting a lock: when the failure map is full, expired and then
 * unlocked entries make room, and if every entry is locked, new addresses share one overflow count.
 */
export class AuthFailureLimiter {
  readonly #failures = new Map<string, Failures>();
  readonly #overflow: Failures = { count: 0, since: 0 };
  // (address, credential digest) pairs that authenticated, oldest first.
  readonly #trusted = new Set<string>();
  // Until then every tracked address stays locked, so a full map is not scanned again.
  #allLockedUntil = 0;

  constructor(
    private readonly maxFailures = 20,
    private readonly windowMs = 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  /** whether to refuse this request (429) before checking its credential */
  blocked(address: string, credential: string | undefined, now = Date.now()): boolean {
    const failures = this.#failures.get(address) ?? this.#overflow;
    if (!this.#locked(failures, now)) return false;
    return credential === undefined || !this.#trusted.has(trustKey(address, credential));
  }

  /** records a credential that authenticated from this address */
  succeed(address: string, credential: string | undefined): void {
    if (credential === undefined) return;
    const key = trustKey(address, credential);
    this.#trusted.delete(key);
    this.#trusted.add(key);
    if (this.#trusted.size > this.maxEntries) this.#trusted.delete(this.#trusted.values().next().value!);
  }

  fail(address: string, now = Date.now()): void {
    const entry = this.#failures.get(address);
    if (entry) return this.#count(entry, now);
    if (this.#failures.size >= this.maxEntries && !this.#makeRoom(now)) return this.#count(this.#overflow, now);
    this.#failures.set(address, { count: 1, since: now });
  }

  /** number of addresses tracked one by one (the overflow count is not among them) */
  get size(): number {
    return this.#failures.size;
  }

  #count(entry: Failures, now: number): void {
    if (now - entry.since > this.windowMs) {
      entry.count = 1;
      entry.since = now;
    } else entry.count++;
  }

  #locked(entry: Failures, now: number): boolean {
    return entry.count >= this.maxFailures && now - entry.since <= this.windowMs;
  }

  /** drops expired entries, else the oldest unlocked one; false when every entry is locked */
  #makeRoom(now: number): boolean {
    if (now < this.#allLockedUntil) return false;
    let unlocked: string | undefined;
    let firstExpiry = Infinity;
    for (const [address, entry] of this.#failures) {
      if (now - entry.since > this.windowMs) this.#failures.delete(address);
      else if (unlocked === undefined && !this.#locked(entry, now)) unlocked = address;
      else firstExpiry = Math.min(firstExpiry, entry.since + this.windowMs + 1);
    }
    if (this.#failures.size < this.maxEntries) return true;
    if (unlocked === undefined) {
      this.#allLockedUntil = firstExpiry;
      return false;
    }
    this.#failures.delete(unlocked);
    return true;
  }
}

// Only a digest is kept, so the limiter holds no secret.
function trustKey(address: string, credential: string): string {
  return `${address} ${tokenDigest(credential).toString('base64')}`;
}
