import type { Logger } from './log.js';
import type { SelfMetrics } from './self-metrics.js';
import type { RunRefusal } from '../windows/window-store.js';

/** Tenants remembered for the log's rate limit before the stale ones are dropped. */
const MAX_REMEMBERED = 10_000;

interface Pending {
  /** when the last line for this tenant and reason was written */
  at: number;
  runs: number;
  spans: number;
}

/**
 * Counts refused runs per reason and says so in the log, naming the tenant: at most one line per
 * tenant and reason an interval, with what was refused since the previous line, so a flood of
 * refusals cannot flood the log.
 */
export class RunRefusalLog {
  readonly #pending = new Map<string, Pending>();

  constructor(
    private readonly metrics: SelfMetrics,
    private readonly log: Pick<Logger, 'warn'>,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  refused(tenantId: string, reason: RunRefusal, runs: number, spans: number): void {
    this.metrics.runsRefused.inc({ reason }, runs);
    const key = `${reason}\u0000${tenantId}`;
    const at = this.now();
    const pending = this.#pending.get(key);
    if (pending !== undefined && at - pending.at < this.intervalMs) {
      pending.runs += runs;
      pending.spans += spans;
      return;
    }
    const message = reason === 'tenant_runs' ? "new runs refused: the tenant holds as many runs as it may and none can give way" : 'new runs refused: Breakwater holds as many runs as it may and none can give way';
    this.log.warn({ tenantId, reason, runs: runs + (pending?.runs ?? 0), spans: spans + (pending?.spans ?? 0), sinceMs: pending === undefined ? 0 : at - pending.at }, message);
    this.#pending.delete(key); // re-inserted last: the map stays in order of the last line written
    this.#pending.set(key, { at, runs: 0, spans: 0 });
    if (this.#pending.size > MAX_REMEMBERED) this.#forgetStale(at);
  }

  /** Tenants remembered (for tests). */
  get size(): number {
    return this.#pending.size;
  }

  #forgetStale(at: number): void {
    for (const [key, pending] of this.#pending) {
      if (at - pending.at < this.intervalMs && this.#pending.size <= MAX_REMEMBERED) break;
      this.#pending.delete(key);
    }
  }
}
