import type { AuditEvent } from '../audit/audit-event.js';
import { mostSevere } from './combine-decisions.js';
import { allowDecision, type Decision, type DecisionDraft } from '../contracts/decision.js';
import { SubscriberQueue, type Subscription } from './subscriber-queue.js';

export interface DecisionBusOptions {
  now?: () => number;
  /** the last sequence issued before this process started (e.g. read from storage) */
  initialSequence?: number;
  /** live messages held per subscriber before superseded ones are dropped; default 1024 */
  subscriberBufferSize?: number;
  /** retry deadlines closer than this count as unchanged; default 1000 ms */
  retryAfterBucketMs?: number;
}

interface Published {
  /** the newest decision, with the newest observed values */
  latest: Decision;
  /** the last decision subscribers were told about: changes are measured against it */
  notified: Decision;
}

interface RunSubscriber {
  queue: SubscriberQueue<Decision>;
  lastSent: Decision;
}

/** Everything the bus keeps for one tenant; dropped when empty. */
interface TenantChannel {
  tenantWide?: Published;
  runs: Map<string, Published>;
  tenantSubscribers: Set<SubscriberQueue<Decision>>;
  runSubscribers: Map<string, Set<RunSubscriber>>;
  eventSubscribers: Set<SubscriberQueue<AuditEvent>>;
}

/**
 * Holds the latest decision per (tenant, run) and pushes changes to agents and dashboards.
 *
 * Publishers call `publish()` after every evaluation; subscribers hear only about changes an agent
 * acts on (action, state, fallback model, tier, degraded, or a retry deadline moved by a bucket or
 * more), so a steady HALT or WARN costs no traffic. The sequence advances only with such a change:
 * equal sequences mean the agent need not act again.
 *
 * Publish the combined decision of a scope (see `mostSevere`): the bus keeps one per (tenant, run),
 * with runId absent meaning tenant-wide.
 *
 * Subscriptions:
 * - tenant (no runId): the raw stream for dashboards and agent hosts: the tenant-wide decision and
 *   each run's changes. A tenant-wide decision is one message, whatever the number of runs.
 * - run: the effective decision for that run (the more severe of its own and the tenant-wide one),
 *   each message complete by itself, so an SDK can simply keep the last one.
 */
export class DecisionBus {
  readonly #now: () => number;
  readonly #capacity: number;
  readonly #bucketMs: number;
  #sequence: number;
  #channels = new Map<string, TenantChannel>();
  readonly #eventTaps = new Set<(event: AuditEvent) => void>();

  constructor(options: DecisionBusOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#sequence = Math.max(0, Math.floor(options.initialSequence ?? 0));
    this.#capacity = Math.max(1, options.subscriberBufferSize ?? 1024);
    this.#bucketMs = Math.max(0, options.retryAfterBucketMs ?? 1000);
  }

  /** The last sequence issued (persist it to seed the next process). */
  get sequence(): number {
    return this.#sequence;
  }

  /** Stamps and stores a decision; returns it as stored (with its sequence and issuedAt). */
  publish(draft: DecisionDraft): Decision {
    const at = this.#now();
    const runId = draft.runId === '' ? undefined : draft.runId;
    const normalized: DecisionDraft = runId === undefined ? withoutRunId(draft) : draft;
    const channel = this.#channels.get(draft.tenantId);
    const existing = runId === undefined ? channel?.tenantWide : channel?.runs.get(runId);
    const baseline = existing?.notified ?? this.#stamp(allowDecision(draft.tenantId, runId), 0, at);

    if (!this.#changed(baseline, normalized, at)) {
      const refreshed = this.#stamp(normalized, existing ? existing.notified.sequence : this.#sequence, at);
      // A run that has only ever been allowed is not stored: thousands of healthy runs cost nothing.
      if (existing) existing.latest = refreshed;
      return refreshed;
    }

    const decision = this.#stamp(normalized, ++this.#sequence, at);
    const target = channel ?? this.#openChannel(draft.tenantId);
    const record = { latest: decision, notified: decision };
    if (runId === undefined) target.tenantWide = record;
    else target.runs.set(runId, record);
    this.#deliver(target, decision, runId);
    return decision;
  }

  /**
   * What applies now: tenant-wide when runId is absent; for a run, the more severe of its own and
   * the tenant-wide decision (its own on a tie); ALLOW/CLOSED when nothing was published.
   */
  latest(tenantId: string, runId?: string): Decision {
    const channel = this.#channels.get(tenantId);
    if (runId === undefined || runId === '') {
      return channel?.tenantWide?.latest ?? this.#stamp(allowDecision(tenantId), this.#sequence, this.#now());
    }
    return this.#effective(tenantId, runId, channel);
  }

  /**
   * The most severe decision in force anywhere in the tenant: the tenant-wide one, or a run's (a
   * run-level HALT, a task's own DEGRADE), for fleet views that must not show such a tenant as ALLOW.
   */
  mostSevereInTenant(tenantId: string): Decision {
    const wide = this.latest(tenantId);
    const channel = this.#channels.get(tenantId);
    if (channel === undefined || channel.runs.size === 0) return wide;
    const decisions = [wide];
    for (const run of channel.runs.values()) decisions.push(run.latest);
    return mostSevere(decisions) ?? wide;
  }

  /**
   * Current decision(s) first (tenant: the tenant-wide decision and every run not at ALLOW; run: its
   * effective decision), then every change. Call `return()` to unsubscribe.
   */
  subscribe(tenantId: string, runId?: string): Subscription<Decision> {
    return runId === undefined || runId === '' ? this.#subscribeTenant(tenantId) : this.#subscribeRun(tenantId, runId);
  }

  /** Breaker transitions and other audited events of one tenant, as they are recorded. */
  subscribeBreakerEvents(tenantId: string): Subscription<AuditEvent> {
    const channel = this.#openChannel(tenantId);
    const queue: SubscriberQueue<AuditEvent> = new SubscriberQueue<AuditEvent>({
      capacity: this.#capacity,
      onClose: () => {
        channel.eventSubscribers.delete(queue);
        this.#dropChannelIfEmpty(tenantId);
      },
    });
    channel.eventSubscribers.add(queue);
    return queue;
  }

  /**
   * Every tenant's breaker events, as they are published (for the webhook notifier). The listener
   * runs on the decision path: it must only enqueue, and what it throws is swallowed.
   */
  tapBreakerEvents(listener: (event: AuditEvent) => void): () => void {
    this.#eventTaps.add(listener);
    return () => this.#eventTaps.delete(listener);
  }

  publishBreakerEvent(event: AuditEvent): void {
    for (const tap of this.#eventTaps) {
      try {
        tap(event);
      } catch {
        // a notifier's bug must not cost a subscriber its event
      }
    }
    const channel = this.#channels.get(event.tenantId);
    if (!channel) return;
    for (const queue of channel.eventSubscribers) queue.push(event);
  }

  /** Drops a finished run's decision so memory follows live runs, not history. */
  forgetRun(tenantId: string, runId: string): void {
    const channel = this.#channels.get(tenantId);
    if (!channel?.runs.delete(runId)) return;
    this.#refreshRunSubscribers(channel, tenantId, runId);
    this.#dropChannelIfEmpty(tenantId);
  }

  /** How many (tenant, run) decisions are held; for self-metrics and tests. */
  storedDecisions(): number {
    let count = 0;
    for (const channel of this.#channels.values()) count += channel.runs.size + (channel.tenantWide ? 1 : 0);
    return count;
  }

  /** Open subscriptions of every kind; for self-metrics and tests. */
  subscriberCount(): number {
    let count = 0;
    for (const channel of this.#channels.values()) {
      count += channel.tenantSubscribers.size + channel.eventSubscribers.size;
      for (const set of channel.runSubscribers.values()) count += set.size;
    }
    return count;
  }

  #subscribeTenant(tenantId: string): Subscription<Decision> {
    const channel = this.#openChannel(tenantId);
    const initial = [this.latest(tenantId)];
    for (const record of channel.runs.values()) if (record.latest.action !== 'ALLOW') initial.push(record.latest);
    const queue: SubscriberQueue<Decision> = new SubscriberQueue<Decision>({
      capacity: this.#capacity,
      initial,
      // A newer decision for the same run makes an unread older one worthless to the reader.
      keyOf: (d) => d.runId ?? '',
      onClose: () => {
        channel.tenantSubscribers.delete(queue);
        this.#dropChannelIfEmpty(tenantId);
      },
    });
    channel.tenantSubscribers.add(queue);
    return queue;
  }

  #subscribeRun(tenantId: string, runId: string): Subscription<Decision> {
    const channel = this.#openChannel(tenantId);
    const current = this.#effective(tenantId, runId, channel);
    const subscriber: RunSubscriber = {
      lastSent: current,
      queue: new SubscriberQueue<Decision>({
        capacity: this.#capacity,
        initial: [current],
        // Each message is the whole effective decision: only the newest unread one matters.
        keyOf: () => '',
        onClose: () => {
          const set = channel.runSubscribers.get(runId);
          set?.delete(subscriber);
          if (set?.size === 0) channel.runSubscribers.delete(runId);
          this.#dropChannelIfEmpty(tenantId);
        },
      }),
    };
    let set = channel.runSubscribers.get(runId);
    if (!set) channel.runSubscribers.set(runId, (set = new Set()));
    set.add(subscriber);
    return subscriber.queue;
  }

  #deliver(channel: TenantChannel, decision: Decision, runId: string | undefined): void {
    for (const queue of channel.tenantSubscribers) queue.push(decision);
    if (runId !== undefined) {
      this.#refreshRunSubscribers(channel, decision.tenantId, runId);
      return;
    }
    for (const id of channel.runSubscribers.keys()) this.#refreshRunSubscribers(channel, decision.tenantId, id);
  }

  #refreshRunSubscribers(channel: TenantChannel, tenantId: string, runId: string): void {
    const subscribers = channel.runSubscribers.get(runId);
    if (!subscribers) return;
    const effective = this.#effective(tenantId, runId, channel);
    for (const subscriber of subscribers) {
      if (!this.#changed(subscriber.lastSent, effective, Date.parse(effective.issuedAt))) continue;
      subscriber.lastSent = effective;
      subscriber.queue.push(effective);
    }
  }

  /**
   * The run's governing decision. Its sequence is the newest of the two it was chosen from, so
   * sequences an SDK sees for one run never go backwards even when the older decision wins.
   */
  #effective(tenantId: string, runId: string, channel: TenantChannel | undefined): Decision {
    const own = channel?.runs.get(runId)?.latest;
    const tenantWide = channel?.tenantWide?.latest;
    if (!own && !tenantWide) return this.#stamp(allowDecision(tenantId, runId), this.#sequence, this.#now());
    if (!own || !tenantWide) return (own ?? tenantWide) as Decision;
    const winner = mostSevere([own, tenantWide], retryDeadline) as Decision;
    const sequence = Math.max(own.sequence, tenantWide.sequence);
    return winner.sequence === sequence ? winner : { ...winner, sequence };
  }

  #changed(previous: Decision, next: DecisionDraft, nextAt: number): boolean {
    if (
      previous.action !== next.action ||
      previous.state !== next.state ||
      previous.fallbackModel !== next.fallbackModel ||
      previous.tier !== next.tier ||
      (previous.degraded ?? false) !== (next.degraded ?? false)
    ) {
      return true;
    }
    // retryAfterMs counts down between evaluations; what the agent acts on is when it may retry.
    const before = retryDeadline(previous);
    const after = next.retryAfterMs > 0 ? nextAt + next.retryAfterMs : 0;
    if ((before === 0) !== (after === 0)) return true;
    if (this.#bucketMs === 0) return after !== before;
    return Math.abs(after - before) >= this.#bucketMs;
  }

  #stamp(draft: DecisionDraft, sequence: number, at: number): Decision {
    // retryAfterMs is whole milliseconds everywhere (GraphQL carries it as an Int).
    return { ...draft, retryAfterMs: Math.max(0, Math.ceil(draft.retryAfterMs)), sequence, issuedAt: new Date(at).toISOString() };
  }

  #openChannel(tenantId: string): TenantChannel {
    let channel = this.#channels.get(tenantId);
    if (!channel) {
      channel = {
        runs: new Map(),
        tenantSubscribers: new Set(),
        runSubscribers: new Map(),
        eventSubscribers: new Set(),
      };
      this.#channels.set(tenantId, channel);
    }
    return channel;
  }

  #dropChannelIfEmpty(tenantId: string): void {
    const c = this.#channels.get(tenantId);
    if (
      c &&
      !c.tenantWide &&
      c.runs.size === 0 &&
      c.tenantSubscribers.size === 0 &&
      c.runSubscribers.size === 0 &&
      c.eventSubscribers.size === 0
    ) {
      this.#channels.delete(tenantId);
    }
  }
}

/** When the agent may retry (ms since the epoch), or 0 when it need not wait. */
function retryDeadline(decision: Decision): number {
  return decision.retryAfterMs > 0 ? Date.parse(decision.issuedAt) + decision.retryAfterMs : 0;
}

function withoutRunId(draft: DecisionDraft): DecisionDraft {
  if (!('runId' in draft)) return draft;
  const { runId: _runId, ...rest } = draft;
  return rest;
}
