// Webhook delivery counters on the service's /metrics registry, labelled by the endpoint's policy
// path (`notifications.webhooks[0]`), never by its URL: a Slack URL is itself a secret.

import { Counter, type Registry } from 'prom-client';

export class WebhookMetrics {
  readonly delivered: Counter<'endpoint'>;
  readonly failed: Counter<'endpoint'>;
  readonly dropped: Counter<'endpoint'>;
  readonly retries: Counter<'endpoint'>;

  constructor(registry: Registry) {
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ['endpoint'] as const, registers: [registry] });
    this.delivered = counter('breakwater_webhook_delivered_total', 'Notifications a webhook endpoint acknowledged with a 2xx');
    this.failed = counter('breakwater_webhook_failed_total', 'Notifications given up: attempts exhausted or refused with a 4xx other than 408 and 429');
    this.dropped = counter('breakwater_webhook_dropped_total', "Notifications dropped unsent because the endpoint's queue was full (the oldest go first)");
    this.retries = counter('breakwater_webhook_retries_total', 'Delivery attempts that failed and were retried');
  }
}
