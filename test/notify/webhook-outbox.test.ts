import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Notification, NotificationType } from '../../src/notify/notification-event.js';
import { DEFAULT_DELIVERY, type WebhookEndpointConfig } from '../../src/notify/webhook-config.js';
import { WebhookDispatcher } from '../../src/notify/webhook-dispatcher.js';
import { WebhookMetrics } from '../../src/notify/webhook-metrics.js';
import { WebhookOutbox } from '../../src/notify/webhook-outbox.js';
import { tempDataDir } from '../helpers/service.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

// The outbox on a real directory: what is owed survives a reopen, what is settled does not, the
// files shrink as endpoints settle, and a damaged record costs only itself.

const silent = { error: () => undefined, warn: () => undefined, info: () => undefined };

function notification(seq: number, tenantId = 'acme', type: NotificationType = 'trip'): Notification {
  const time = new Date(1_700_000_000_000 + seq).toISOString();
  return {
    id: `${tenantId}/${seq}`,
    type,
    tenantId,
    time,
    event: { tenantId, runId: `run-${seq}`, scope: 'RUN', oldState: 'CLOSED', newState: 'OPEN', reason: `drill ${seq}`, time } as Notification['event'],
  };
}

const idsOf = (owed: { notification: Notification; endpoints: string[] }[]) => owed.map((o) => [o.notification.id, o.endpoints]);

describe('the webhook outbox', () => {
  it('gives back, oldest first, each notification with only the endpoints that have not settled it', () => {
    const dir = tempDataDir('bw-outbox-');
    const { outbox } = WebhookOutbox.open(dir, silent);
    const ids = [1, 2, 3].map((seq) => outbox.add(notification(seq), ['a', 'b'])!);
    outbox.settle(ids[0], 'a');
    outbox.settle(ids[0], 'b');
    outbox.settle(ids[1], 'a');
    // settling twice, or an endpoint it was never owed to, changes nothing
    outbox.settle(ids[1], 'a');
    outbox.settle(ids[2], 'c');
    expect(outbox.owed).toBe(2);
    outbox.close();

    const reopened = WebhookOutbox.open(dir, silent);
    expect(idsOf(reopened.owed)).toEqual([
      ['acme/2', ['b']],
      ['acme/3', ['a', 'b']],
    ]);
    expect(reopened.owed[0]!.notification).toEqual(notification(2));
    expect(reopened.unreadable).toBe(0);

    // settled in the second life: a third open owes nothing from the first
    for (const owed of reopened.owed) for (const e of owed.endpoints) reopened.outbox.settle(owed.id, e);
    const added = reopened.outbox.add(notification(4), ['a']);
    reopened.outbox.close();
    const third = WebhookOutbox.open(dir, silent);
    expect(idsOf(third.owed)).toEqual([['acme/4', ['a']]]);
    expect(third.owed[0]!.id).toBe(added);
    third.outbox.close();
  });

  it('deletes what every endpoint settled: 20,000 notifications leave a file of at most 1 MiB', () => {
    const dir = tempDataDir('bw-outbox-');
    const { outbox } = WebhookOutbox.open(dir, silent);
    for (let seq = 1; seq <= 20_000; seq++) {
      const id = outbox.add(notification(seq), ['a', 'b']);
      outbox.settle(id, 'a');
      outbox.settle(id, 'b');
    }
    outbox.close();
    const bytes = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    expect(bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(WebhookOutbox.open(dir, silent).owed).toEqual([]);
  });

  it('keeps an owed notification however many settle after it', () => {
    const dir = tempDataDir('bw-outbox-');
    const { outbox } = WebhookOutbox.open(dir, silent);
    const stuck = outbox.add(notification(0), ['stuck']);
    for (let seq = 1; seq <= 10_000; seq++) outbox.settle(outbox.add(notification(seq), ['a']), 'a');
    outbox.close();
    expect(idsOf(WebhookOutbox.open(dir, silent).owed)).toEqual([['acme/0', ['stuck']]]);
    expect(stuck).toBeDefined();
  });

  it('skips a record that is not one of its own, and a line torn by a kill, and replays the rest', () => {
    const dir = tempDataDir('bw-outbox-');
    const { outbox } = WebhookOutbox.open(dir, silent);
    outbox.add(notification(1), ['a']);
    outbox.close();
    const [segment] = readdirSync(dir);
    appendFileSync(join(dir, segment!), '{"t":"n","n":{"id":7},"to":"a"}\n{"t":"s","of":"x"}\n"text"\nnull\n');
    const { outbox: second } = WebhookOutbox.open(dir, silent);
    second.add(notification(2), ['a']);
    second.close();
    const newest = readdirSync(dir).sort().at(-1)!;
    appendFileSync(join(dir, newest), '{"t":"n","n":{"id":"acme/3"');
    const reopened = WebhookOutbox.open(dir, silent);
    expect(idsOf(reopened.owed)).toEqual([
      ['acme/1', ['a']],
      ['acme/2', ['a']],
    ]);
    expect(reopened.unreadable).toBe(4);
  });

  it('sends from memory when the disk refuses, and says so once', () => {
    const errors: string[] = [];
    const { outbox } = WebhookOutbox.open(tempDataDir('bw-outbox-'), { error: (_o: unknown, msg: string) => errors.push(msg) } as never);
    outbox.close();
    expect(outbox.add(notification(1), ['a'])).toBeUndefined();
    expect(outbox.add(notification(2), ['a'])).toBeUndefined();
    expect(() => outbox.settle(undefined, 'a')).not.toThrow();
    expect(errors).toEqual(['webhook outbox not writable: notifications are sent but not kept across a restart']);
  });
});

describe('resuming what a previous process owed', () => {
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  const endpoint = (name: string, path: string, o: Partial<WebhookEndpointConfig> = {}): WebhookEndpointConfig => ({
    name,
    url: `${receiver.url}${path}`,
    secret: 'resume-secret-0123456789',
    format: 'json',
    events: new Set<NotificationType>(['trip', 'tier_change']),
    ...o,
  });

  it('sends to the same policy path only what it may still receive, and settles the rest', async () => {
    const dir = tempDataDir('bw-outbox-');
    const first = WebhookOutbox.open(dir, silent).outbox;
    first.add(notification(1, 'acme'), ['notifications.webhooks[0]', 'notifications.tenants.acme.webhooks[0]']);
    first.add(notification(2, 'acme', 'tier_change'), ['notifications.webhooks[0]']);
    first.add(notification(3, 'acme'), ['notifications.webhooks[1]']);
    first.close();

    // The policy changed meanwhile: the platform endpoint takes trips only, webhooks[1] is gone.
    const { outbox, owed } = WebhookOutbox.open(dir, silent);
    const dispatcher = new WebhookDispatcher({ metrics: new WebhookMetrics(new Registry()), log: silent, outbox });
    dispatcher.configure(
      [endpoint('notifications.webhooks[0]', '/platform', { events: new Set(['trip']) }), endpoint('notifications.tenants.acme.webhooks[0]', '/acme', { tenantId: 'acme' })],
      DEFAULT_DELIVERY,
    );
    expect(dispatcher.resume(owed)).toEqual({ resumed: 2, settled: 2 });
    await receiver.waitFor((rs) => rs.length === 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.requests.map((r) => [r.path, r.headers['breakwater-event-id']]).sort()).toEqual([
      ['/acme', 'acme/1'],
      ['/platform', 'acme/1'],
    ]);
    dispatcher.stop();
    outbox.close();
    expect(WebhookOutbox.open(dir, silent).owed).toEqual([]);
  });
});
