// One tenant's recent model-call latencies per ladder entry, for its latency SLA: the SLA is judged
// on the tenant's own calls only, so another tenant's slow calls on the same model cannot move it.
// Bounded per tenant: at most MAX_ENTRIES entries (the least recently called goes first), each the
// last RING_CALLS calls; it lives in the engine's state of the tenant and is dropped with it.

export const MAX_ENTRIES = 16;
export const RING_CALLS = 128;
const WINDOW_MS = 60_000;

/** the latencies of one p95 read, sorted in place (reads do not nest) */
const scratch = new Float64Array(RING_CALLS);

class LatencyRing {
  readonly #endMs = new Float64Array(RING_CALLS);
  readonly #latencyMs = new Float32Array(RING_CALLS);
  #next = 0;
  #size = 0;
  lastCallMs = 0;

  add(endMs: number, latencyMs: number): void {
    this.#endMs[this.#next] = endMs;
    this.#latencyMs[this.#next] = latencyMs;
    this.#next = (this.#next + 1) % RING_CALLS;
    if (this.#size < RING_CALLS) this.#size++;
    if (endMs > this.lastCallMs) this.lastCallMs = endMs;
  }

  /** Nearest-rank p95 of the calls that ended in the last 60 s, and their rate per minute. */
  read(now: number): { latencyP95Ms: number; callsPerMinute: number } | undefined {
    const cutoff = now - WINDOW_MS;
    let n = 0;
    let oldest = Infinity;
    for (let i = 0; i < this.#size; i++) {
      const end = this.#endMs[i] as number;
      if (end <= cutoff) continue;
      scratch[n++] = this.#latencyMs[i] as number;
      if (end < oldest) oldest = end;
    }
    if (n === 0) return undefined;
    const sorted = scratch.subarray(0, n).sort();
    const latencyP95Ms = sorted[Math.max(1, Math.ceil(0.95 * n)) - 1] as number;
    // A full ring of recent calls holds fewer than the minute had: scale to the span it covers.
    const callsPerMinute = n === RING_CALLS ? (n * WINDOW_MS) / Math.max(1, now - oldest) : n;
    return { latencyP95Ms, callsPerMinute };
  }
}

export class TenantLatency {
  readonly #rings = new Map<string, LatencyRing>();

  /** ladder entries held (the memory bound is MAX_ENTRIES × RING_CALLS calls) */
  get size(): number {
    return this.#rings.size;
  }

  record(provider: string, model: string, endMs: number, latencyMs: number): void {
    const key = `${provider}\u0000${model}`;
    let ring = this.#rings.get(key);
    if (ring === undefined) {
      if (this.#rings.size >= MAX_ENTRIES) this.#dropIdlest();
      this.#rings.set(key, (ring = new LatencyRing()));
    }
    ring.add(endMs, latencyMs);
  }

  read(provider: string, model: string, now: number): { latencyP95Ms: number; callsPerMinute: number } | undefined {
    return this.#rings.get(`${provider}\u0000${model}`)?.read(now);
  }

  clear(): void {
    this.#rings.clear();
  }

  #dropIdlest(): void {
    let idlest: string | undefined;
    let at = Infinity;
    for (const [key, ring] of this.#rings) {
      if (ring.lastCallMs < at) {
        at = ring.lastCallMs;
        idlest = key;
      }
    }
    if (idlest !== undefined) this.#rings.delete(idlest);
  }
}
