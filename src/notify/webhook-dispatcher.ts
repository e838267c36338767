// Routes each notification to the endpoints that may receive it: every platform-wide endpoint,
// and the endpoints of the event's own tenant only. Counts what happens to each in /metrics and
// says in the log when one is given up or dropped (naming the endpoint by its policy path).

import type { AuditEvent } from '../audit/audit-event.js';
import type { Logger } from '../app/log.js';
import type { RefusalLog } from '../app/refusal-log.js';
import type { DeliverySettings, WebhookEndpointConfig } from './webhook-config.js';
import { WebhookEndpoint, type EndpointHooks } from './webhook-endpoint.js';
import type { WebhookMetrics } from './webhook-metrics.js';
import { notificationOf, notificationTypeOf } from './notification-event.js';

export interface DispatcherOptions {
  metrics: WebhookMetrics;
  log: Pick<Logger, 'warn' | 'info'>;
  refusals?: Pick<RefusalLog, 'refused'>;
}

export class WebhookDispatcher {
  readonly #o: DispatcherOptions;
  readonly #hooks: EndpointHooks;
  #endpoints = new Map<string, WebhookEndpoint>();

  constructor(options: DispatcherOptions) {
    this.#o = options;
    const { metrics, log, refusals } = options;
    this.#hooks = {
      delivered: (e) => metrics.delivered.inc({ endpoint: e.name }),
      failed: (e, n, attempts, why) => {
        metrics.failed.inc({ endpoint: e.name });
        log.warn({ endpoint: e.name, tenantId: n.tenantId, eventId: n.id, attempts, why }, 'webhook notification given up');
      },
      dropped: (e, n) => {
        metrics.dropped.inc({ endpoint: e.name });
        refusals?.refused(e.tenantId ?? null, 'webhook_queue_full', { notifications: 1 }, { endpoint: e.name, eventTenantId: n.tenantId });
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
      if (left > 0) this.#o.log.warn({ endpoint: name, undelivered: left }, 'webhook endpoint removed from the policy; its pending notifications are dropped');
    }
    this.#endpoints = next;
  }

  /** Called on the decision path for every published breaker event: classifies and enqueues, never waits. */
  notify(event: AuditEvent): void {
    const type = notificationTypeOf(event);
    if (type === undefined || this.#endpoints.size === 0) return;
    const notification = notificationOf(event, type);
    for (const endpoint of this.#endpoints.values()) {
      const { tenantId, events } = endpoint.config;
      if (tenantId !== undefined && tenantId !== event.tenantId) continue;
      if (events.has(type)) endpoint.enqueue(notification);
    }
  }

  /** Notifications not yet acknowledged, per endpoint name (for tests and the shutdown log). */
  pending(): Record<string, number> {
    return Object.fromEntries([...this.#endpoints].map(([name, e]) => [name, e.pending]));
  }

  /** Stops every endpoint; what was not delivered is logged by count (it is lost with the process). */
  stop(): void {
    for (const [name, endpoint] of this.#endpoints) {
      const left = endpoint.stop();
      if (left > 0) this.#o.log.warn({ endpoint: name, undelivered: left }, 'stopping: webhook notifications not delivered (each stays in the audit log)');
    }
    this.#endpoints.clear();
  }
}
