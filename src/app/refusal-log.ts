import type { Logger } from './log.js';
import type { SelfMetrics } from './self-metrics.js';

/** Tenants remembered for the log's rate limit before the stale ones are dropped. */
const MAX_REMEMBERED = 10_000;

/** Every per-tenant bound that refuses a tenant, as the log's `reason` field. */
export type RefusalReason =
  | 'tenant_runs'
  | 'runs'
  | 'tenant_rate_limited'
  | 'unknown_tenants_rate_limited'
  | 'unknown_tenants_count_limited'
  | 'tenant_queue_share'
  | 'tenant_queue_share_bytes'
  | 'subscriptions_per_connection'
  | 'subscriptions_per_token'
  | 'policy_change_rate'
  | 'run_breakers'
  | 'webhook_queue_full';

type Counts = Readonly<Record<string, number>>;

interface ReasonSpec {
  message: string;
  /** the bound's metric, when no other module counts it (spans refused at ingest are counted where refused) */
  count?: (metrics: SelfMetrics, counts: Counts) => void;
  /** a budget all unknown tenants share: one line an interval for all of them, or rotating ids would flood the log */
  shared?: boolean;
}

const REASONS: Record<RefusalReason, ReasonSpec> = {
  tenant_runs: {
    message: 'new runs refused: the tenant holds as many runs as it may and none can give way',
    count: (m, c) => m.runsRefused.inc({ reason: 'tenant_runs' }, c.runs ?? 0),
  },
  runs: {
    message: 'new runs refused: Breakwater holds as many runs as it may and none can give way',
    count: (m, c) => m.runsRefused.inc({ reason: 'runs' }, c.runs ?? 0),
  },
  tenant_rate_limited: { message: 'OTLP requests refused (429): the tenant is over its ingest rate' },
  unknown_tenants_rate_limited: { message: 'OTLP requests refused (429): tenants not named in the policy are over the rate they share', shared: true },
  unknown_tenants_count_limited: { message: 'OTLP requests refused (429): as many tenants not named in the policy as may are sending', shared: true },
  tenant_queue_share: { message: 'OTLP requests refused (429): the tenant holds its share of the write queue in spans' },
  tenant_queue_share_bytes: { message: 'OTLP requests refused (429): the tenant holds its share of the write queue in attribute bytes' },
  subscriptions_per_connection: {
    message: 'subscriptions refused: the connection holds as many as it may',
    count: (m, c) => m.subscriptionsRefused.inc({ limit: 'connection' }, c.subscriptions ?? 0),
  },
  subscriptions_per_token: {
    message: 'subscriptions refused: the token holds as many as it may',
    count: (m, c) => m.subscriptionsRefused.inc({ limit: 'token' }, c.subscriptions ?? 0),
  },
  policy_change_rate: {
    message: "run-time policy changes refused: the tenant is over its rate of changes",
    count: (m, c) => m.policyChangesRefused.inc(c.changes ?? 0),
  },
  run_breakers: {
    message: 'operator actions refused: the tenant holds as many run breakers as it may',
    count: (m, c) => m.runBreakersRefused.inc(c.actions ?? 0),
  },
  // counted per endpoint by the webhook dispatcher (breakwater_webhook_dropped_total)
  webhook_queue_full: { message: "webhook notifications dropped: the endpoint's queue is full and the oldest give way" },
};

interface Pending {
  /** when the last line for this tenant and reason was written */
  at: number;
  counts: Record<string, number>;
}

/**
 * Counts refusals of the per-tenant bounds and says so in the log, naming the tenant: at most one
 * line per tenant and reason an interval, with what was refused since the previous line, so a
 * flood of refusals cannot flood the log.
 */
export class RefusalLog {
  readonly #pending = new Map<string, Pending>();

  constructor(
    private readonly metrics: SelfMetrics,
    private readonly log: Pick<Logger, 'warn'>,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * One refusal of `tenantId` (null: a platform admin's, no tenant's): `counts` are summed into
   * the next line, `detail` (never a secret) is written as it is on the line this refusal writes.
   */
  refused(tenantId: string | null, reason: RefusalReason, counts: Counts, detail?: Readonly<Record<string, string | number>>): void {
    const spec = REASONS[reason];
    spec.count?.(this.metrics, counts);
    const key = spec.shared ? reason : `${reason}\u0000${tenantId ?? ''}`;
    const at = this.now();
    const pending = this.#pending.get(key);
    if (pending !== undefined && at - pending.at < this.intervalMs) {
      for (const [name, n] of Object.entries(counts)) pending.counts[name] = (pending.counts[name] ?? 0) + n;
      return;
    }
    const total: Record<string, number> = { ...counts };
    for (const [name, n] of Object.entries(pending?.counts ?? {})) total[name] = (total[name] ?? 0) + n;
    this.log.warn({ tenantId, reason, ...detail, ...total, sinceMs: pending === undefined ? 0 : at - pending.at }, spec.message);
    this.#pending.delete(key); // re-inserted last: the map stays in order of the last line written
    this.#pending.set(key, { at, counts: {} });
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
