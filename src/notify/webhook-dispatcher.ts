// Routes each notification to the endpoints that may receive it: every platform-wide endpoint,
// and the endpoints of the event's own tenant only. Counts what happens to each in /metrics and
// says in the log when one is given up or dropped (naming the endpoint by its policy path); with
// an outbox, writes each down before sending and settles it after, so a restart resumes.

import type { AuditEvent } from '../audit/audit-event.js';
import type { Logger } from '../app/log.js';
import type { RefusalLog } from '../app/refusal-log.js';
import type { DeliverySettings, WebhookEndpointConfig } from './webhook-config.js';
import { WebhookEndpoint, type EndpointHooks } from './webhook-endpoint.js';
import type { WebhookMetrics } from './webhook-metrics.js';
import type { OwedNotification, WebhookOutbox } from './webhook-outbox.js';
import { notificationOf, notificationTypeOf, type Notification } from './notification-event.js';

export interface DispatcherOptions {
  metrics: WebhookMetrics;
  log: Pick<Logger, 'warn' | 'info'>;
  refusals?: Pick<RefusalLog, 'refused'>;
  /** unset: queues live in memory only */
  outbox?: Pick<WebhookOutbox, 'add' | 'settle'>;
}

export class WebhookDispatcher {
  readonly #o: DispatcherOptions;
  readonly #hooks: EndpointHooks;
  #endpoints = new Map<string, WebhookEndpoint>();

  constructor(options: DispatcherOptions) {
    this.#o = options;
    const { metrics, log, refusals, outbox } = options;
    this.#hooks = {
      delivered: (e, q) => {
        metrics.delivered.inc({ endpoint: e.name });
        outbox?.settle(q.outboxId, e.name);
      },
      failed: (e, q, attempts, why) => {
        metrics.failed.inc({ endpoint: e.name });
        outbox?.settle(q.outboxId, e.name);
        log.warn({ endpoint: e.name, tenantId: q.notification.tenantId, eventId: q.notification.id, attempts, why }, 'webhook notification given up');
      },
      dropped: (e, q) => {
        metrics.dropped.inc({ endpoint: e.name });
        outbox?.settle(q.outboxId, e.name);
        refusals?.refused(e.tenantId ?? null, 'webhook_queue_full', { notifications: 1 }, { endpoint: e.name, eventTenantId: q.notification.tenantId });
      },
      retried: (e) => metrics.retries.inc({ endpoint: e.name }),
    };
  }

  /** Applies a (re)loaded policy: kept endpoints keep their queue, removed ones stop. */
  configure(configs: readonly WebhookEndpointConfig[], settings: DeliverySettings): void {
    const next = new Map<string, WebhookEndpoint>();
    for (const config of configs) {
      const existing = this.#endpoints.get(config.name);
      if (existing !== undefined) existing.reconfigure(config, settings);
      next.set(config.name, existing ?? new WebhookEndpoint(config, settings, this.#hooks));
    }
    for (const [name, endpoint] of this.#endpoints) {
      if (next.has(name)) continue;
      const left = endpoint.stop();
      for (const q of left) this.#o.outbox?.settle(q.outboxId, name);
      if (left.length > 0) this.#o.log.warn({ endpoint: name, undelivered: left.length }, 'webhook endpoint removed from the policy; its pending notifications are dropped');
    }
    this.#endpoints = next;
  }

  /** Called on the decision path for every published breaker event: classifies and enqueues, never waits. */
  notify(event: AuditEvent): void {
    const type = notificationTypeOf(event);
    if (type === undefined || this.#endpoints.size === 0) return;
    const notification = notificationOf(event, type);
    const targets = [...this.#endpoints.values()].filter((e) => this.#mayReceive(e, notification));
    if (targets.length === 0) return;
    const outboxId = this.#o.outbox?.add(notification, targets.map((e) => e.config.name));
    for (const endpoint of targets) endpoint.enqueue({ notification, outboxId });
  }

  /**
   * Queues what a previous process still owed, oldest first, to the endpoints of the same policy
   * path that may still receive it; the rest is settled. Returns how many of each.
   */
  resume(owed: readonly OwedNotification[]): { resumed: number; settled: number } {
    let resumed = 0;
    let settled = 0;
    for (const { id, notification, endpoints } of owed) {
      for (const name of endpoints) {
        const endpoint = this.#endpoints.get(name);
        if (endpoint !== undefined && this.#mayReceive(endpoint, notification)) {
          endpoint.enqueue({ notification, outboxId: id });
          resumed++;
        } else {
          this.#o.outbox?.settle(id, name);
          settled++;
        }
      }
    }
    return { resumed, settled };
  }

  /** Platform-wide endpoints get every tenant's events; a tenant's endpoints only its own. */
  #mayReceive(endpoint: WebhookEndpoint, n: Notification): boolean {
    const { tenantId, events } = endpoint.config;
    return (tenantId === undefined || tenantId === n.tenantId) && events.has(n.type);
  }

  /** Notifications not yet acknowledged, per endpoint name (for tests and the shutdown log). */
  pending(): Record<string, number> {
    return Object.fromEntries([...this.#endpoints].map(([name, e]) => [name, e.pending]));
  }

  /** Stops every endpoint; what was not delivered is logged by count: the outbox's is sent at the next start, the rest is lost. */
  stop(): void {
    for (const [name, endpoint] of this.#endpoints) {
      const left = endpoint.stop();
      const kept = left.filter((q) => q.outboxId !== undefined).length;
      if (kept > 0) this.#o.log.info({ endpoint: name, undelivered: kept }, 'stopping: webhook notifications not yet delivered are sent at the next start');
      if (kept < left.length) this.#o.log.warn({ endpoint: name, undelivered: left.length - kept }, 'stopping: webhook notifications not delivered (each stays in the audit log)');
    }
    this.#endpoints.clear();
  }
}
