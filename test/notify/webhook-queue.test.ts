import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { gql } from '../helpers/graphql.js';
import { capturedLog, counterValue, refusalLines, startWithPolicy, type LogLine } from '../helpers/service.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

// An endpoint that stops answering holds at most maxQueue notifications: past it the oldest give
// way, counted per endpoint on /metrics and said in the refusal log, without the URL.

const SECRET = 'queue-hook-secret-0123456789';

let receiver: WebhookReceiver;
let service: Service;
let lines: LogLine[];

beforeAll(async () => {
  receiver = await startWebhookReceiver({ '/stuck': () => undefined, '/down': () => ({ status: 503 }) });
  const log = capturedLog();
  lines = log.lines;
  service = await startWithPolicy(
    `notifications:\n  delivery: { maxQueue: 2, timeoutMs: 60000, maxAttempts: 2, backoffMs: 10 }\n  webhooks: [{ url: "${receiver.url}/down", secret: "${SECRET}", events: [trip] }]\n  tenants:\n    acme:\n      webhooks: [{ url: "${receiver.url}/stuck", secret: "${SECRET}", events: [trip] }]\n`,
    log.logger,
  );
});

afterAll(async () => {
  await service?.stop();
  await receiver?.close();
});

const runOf = (body: string) => (JSON.parse(body) as { event: { runId: string } }).event.runId;

describe('a webhook endpoint that does not answer', () => {
  it('keeps the newest maxQueue notifications and counts the ones dropped', async () => {
    for (let i = 1; i <= 5; i++) {
      const res = await gql(service.graphqlUrl, `mutation { forceOpenBreaker(tenantId: "acme", runId: "run-${i}", reason: "drill ${i}") { state } }`);
      expect(res.errors).toBeUndefined();
      // run-1 is on its way before the others are queued
      if (i === 1) await receiver.waitFor((rs) => rs.filter((r) => r.path === '/stuck').length === 1);
    }
    const metrics = await (await fetch(`${service.graphqlUrl}/metrics`)).text();
    expect(metrics).toContain('breakwater_webhook_dropped_total{endpoint="notifications.tenants.acme.webhooks[0]"} 2');
    expect(metrics).not.toContain(receiver.url.replace('http://', ''));
    const [refusal] = refusalLines(lines, 'webhook_queue_full').filter((l) => l.tenantId === 'acme');
    expect(refusal).toMatchObject({ tenantId: 'acme', endpoint: 'notifications.tenants.acme.webhooks[0]' });
    expect(JSON.stringify(lines)).not.toContain(receiver.url);
    expect(JSON.stringify(lines)).not.toContain(SECRET);

    // answered one by one: run-2 and run-3, the oldest waiting, were the ones dropped
    const delivered: string[] = [];
    for (let n = 1; n <= 3; n++) {
      await receiver.waitFor(() => receiver.at('/stuck').length === n);
      const request = receiver.at('/stuck')[n - 1]!;
      delivered.push(runOf(request.body));
      request.res.writeHead(200).end();
    }
    expect(delivered).toEqual(['run-1', 'run-4', 'run-5']);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.at('/stuck')).toHaveLength(3);
  });

  it('gives a notification up after maxAttempts, counted and logged without the URL', async () => {
    const endpoint = { endpoint: 'notifications.webhooks[0]' };
    const settled = async () => (await counterValue(service, 'breakwater_webhook_failed_total', endpoint)) + (await counterValue(service, 'breakwater_webhook_dropped_total', endpoint));
    for (let i = 0; i < 500 && (await settled()) < 5; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await settled()).toBe(5);
    const failed = await counterValue(service, 'breakwater_webhook_failed_total', endpoint);
    expect(failed).toBeGreaterThanOrEqual(1);
    expect(await counterValue(service, 'breakwater_webhook_delivered_total', endpoint)).toBe(0);
    // each given-up notification was tried exactly maxAttempts (2) times
    const attempts = new Map<string, number>();
    for (const r of receiver.at('/down')) attempts.set(String(r.headers['breakwater-event-id']), (attempts.get(String(r.headers['breakwater-event-id'])) ?? 0) + 1);
    expect([...attempts.values()]).toEqual(Array.from({ length: failed }, () => 2));
    const givenUp = lines.filter((l) => l.msg === 'webhook notification given up');
    expect(givenUp).toHaveLength(failed);
    expect(givenUp[0]).toMatchObject({ endpoint: 'notifications.webhooks[0]', attempts: 2, why: 'HTTP 503' });
    expect(JSON.stringify(lines)).not.toContain(receiver.url);
  });
});
