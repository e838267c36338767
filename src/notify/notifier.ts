// Wires webhooks into the service: the policy's `notifications:` section (re-read at every policy
// change) configures the dispatcher, and the decision bus's breaker events feed it, the same feed
// the breakerEvents subscription serves. With a data directory, the queues are kept in its
// webhook outbox and what the previous process still owed is sent first.

import type { Logger } from '../app/log.js';
import type { RefusalLog } from '../app/refusal-log.js';
import type { SelfMetrics } from '../app/self-metrics.js';
import type { DecisionBus } from '../decisions/decision-bus.js';
import type { PolicyStore } from '../policy/policy-store.js';
import { resolveWebhookEndpoints } from './webhook-config.js';
import { WebhookDispatcher } from './webhook-dispatcher.js';
import { WebhookMetrics } from './webhook-metrics.js';
import { WebhookOutbox } from './webhook-outbox.js';

export interface NotifierOptions {
  bus: Pick<DecisionBus, 'tapBreakerEvents'>;
  policy: Pick<PolicyStore, 'current' | 'onChange'>;
  metrics: SelfMetrics;
  refusals: RefusalLog;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** where the queues are kept across restarts (WebhookOutbox.dirIn); unset: in memory only */
  outboxDir?: string;
}

/** Starts notifying; throws SecretError when a webhook's secret cannot be read at start. */
export function startNotifier(o: NotifierOptions): { dispatcher: WebhookDispatcher; stop(): void } {
  const env = o.env ?? process.env;
  let applied = o.policy.current().notifications;
  const endpoints = resolveWebhookEndpoints(applied, env);
  const opened = o.outboxDir === undefined ? undefined : WebhookOutbox.open(o.outboxDir, o.log);
  const dispatcher = new WebhookDispatcher({ metrics: new WebhookMetrics(o.metrics.registry), log: o.log, refusals: o.refusals, outbox: opened?.outbox });
  dispatcher.configure(endpoints, applied.delivery);
  if (endpoints.length > 0) o.log.info({ endpoints: endpoints.map((e) => e.name) }, 'webhook notifications on');
  if (opened !== undefined && (opened.owed.length > 0 || opened.unreadable > 0)) {
    const { resumed, settled } = dispatcher.resume(opened.owed);
    const summary = { resumed, noLongerRouted: settled, unreadableRecords: opened.unreadable };
    // a record that is not the outbox's own means the directory was edited or damaged
    (opened.unreadable > 0 ? o.log.warn : o.log.info).call(o.log, summary, 'webhook notifications owed by the previous process queued again');
  }
  const stopListening = o.policy.onChange((document) => {
    if (JSON.stringify(document.notifications) === JSON.stringify(applied)) return;
    try {
      dispatcher.configure(resolveWebhookEndpoints(document.notifications, env), document.notifications.delivery);
      applied = document.notifications;
      o.log.info({ endpoints: Object.keys(dispatcher.pending()) }, 'webhook endpoints changed');
    } catch (err) {
      o.log.error({ error: (err as Error).message }, 'notifications section not applied; the previous webhooks stay in force');
    }
  });
  const untap = o.bus.tapBreakerEvents((event) => dispatcher.notify(event));
  return {
    dispatcher,
    stop() {
      untap();
      stopListening();
      dispatcher.stop();
      opened?.outbox.close();
    },
  };
}
