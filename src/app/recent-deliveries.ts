import { createHash } from 'node:crypto';
import type { AgentSpan } from '../contracts/agent-span.js';

/** What happened to an earlier delivery of the same spans. */
export type DeliveryState = 'new' | 'observed' | 'committed';

export interface RecentDeliveriesOptions {
  /** how long a delivery is remembered; default 10 min (OTLP exporters retry for well under that) */
  ttlMs?: number;
  /** most deliveries remembered; the oldest go first. Default 100 000 */
  maxEntries?: number;
  now?: () => number;
}

interface Entry {
  at: number;
  committed: boolean;
}

/**
 * Digests of recently received requests, so a delivery retried by its exporter (the same spans of
 * the same tenants, in the same order) is counted once: the decision path saw it the first time,
 * and storage is skipped when the first attempt committed. A digest covers tenant, trace and span
 * ids only: the same span sent again is the same span, whatever else changed.
 */
export class RecentDeliveries {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: RecentDeliveriesOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 600_000;
    this.#maxEntries = Math.max(1, options.maxEntries ?? 100_000);
    this.#now = options.now ?? Date.now;
  }

  static digest(spans: readonly AgentSpan[]): string {
    const hash = createHash('sha256');
    let chunk = '';
    for (const span of spans) {
      chunk += `${span.tenantId}\u0000${span.traceId}${span.spanId}\n`;
      if (chunk.length > 16_384) {
        hash.update(chunk);
        chunk = '';
      }
    }
    return hash.update(chunk).digest('base64');
  }

  /** How far an earlier delivery of the same spans got. */
  earlier(digest: string): DeliveryState {
    this.#evict(this.#now());
    const entry = this.#entries.get(digest);
    if (entry === undefined) return 'new';
    return entry.committed ? 'committed' : 'observed';
  }

  /** The decision path has seen these spans. */
  observed(digest: string): void {
    if (!this.#entries.has(digest)) this.#entries.set(digest, { at: this.#now(), committed: false });
  }

  /** Storage has these spans. */
  committed(digest: string): void {
    const entry = this.#entries.get(digest);
    if (entry !== undefined) entry.committed = true;
    else this.#entries.set(digest, { at: this.#now(), committed: true });
  }

  get size(): number {
    return this.#entries.size;
  }

  #evict(now: number): void {
    // Insertion order is arrival order: the oldest entries are first.
    for (const [digest, entry] of this.#entries) {
      if (this.#entries.size < this.#maxEntries && now - entry.at < this.#ttlMs) break;
      this.#entries.delete(digest);
    }
  }
}
