import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { verifySignature } from '../../src/notify/webhook-signer.js';
import { gql, subscribeSse } from '../helpers/graphql.js';
import { counterValue, startWithPolicy } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';
import { startWebhookReceiver, type ReceivedRequest, type WebhookReceiver } from '../helpers/webhook-receiver.js';

// Webhooks against a real HTTP receiver on loopback, fed by a real Breakwater: trips made by real
// OTLP spans and by GraphQL mutations over HTTP.

const SECRET = 'platform-hook-secret-0123456789';
const TENANT_SECRET = 'tenant-hook-secret-0123456789';
const SECRET_ENV = 'BW_TEST_WEBHOOK_SECRET';

let receiver: WebhookReceiver;
let service: Service;

const policy = (url: string) => `
tenants:
  tenant-a: { overrides: { run: { stepCount: 2 } } }
  tenant-b: { overrides: { run: { stepCount: 2 } } }
notifications:
  delivery: { backoffMs: 20, maxBackoffMs: 5000, timeoutMs: 60000, maxAttempts: 5 }
  webhooks:
    - { url: "${url}/platform", secret: { env: ${SECRET_ENV} } }
    - { url: "${url}/flaky", secret: "${SECRET}", events: [trip] }
    - { url: "${url}/retry-after", secret: "${SECRET}", events: [trip] }
    - { url: "${url}/hang", secret: "${SECRET}", events: [trip] }
    - { url: "${url}/slack", secret: "${SECRET}", events: [trip], format: slack }
  tenants:
    tenant-a:
      webhooks: [{ url: "${url}/tenant-a", secret: "${TENANT_SECRET}" }]
    tenant-b:
      webhooks: [{ url: "${url}/tenant-b", secret: "${TENANT_SECRET}" }]
`;

interface Payload {
  id: string;
  type: string;
  tenantId: string;
  time: string;
  event: Record<string, unknown> & { tenantId: string; runId: string | null; newState: string };
}

const payload = (r: ReceivedRequest) => JSON.parse(r.body) as Payload;
const tripsOf = (requests: ReceivedRequest[], tenantId: string, runId: string) =>
  requests.filter((r) => payload(r).type === 'trip' && payload(r).tenantId === tenantId && payload(r).event.runId === runId);

/** Trips run `runId` of `tenantId` with real spans: three steps over a stepCount of 2. */
async function tripRun(tenantId: string, runId: string): Promise<void> {
  const res = await postSpans(service.otlpUrl, runSteps(tenantId, runId, [{ tool: 'search' }, {}, { tool: 'search' }]));
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  receiver = await startWebhookReceiver({
    '/flaky': (attempt) => ({ status: attempt === 1 ? 500 : 200 }),
    '/retry-after': (attempt) => (attempt === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 }),
    '/hang': () => undefined,
  });
  process.env[SECRET_ENV] = SECRET;
  service = await startWithPolicy(policy(receiver.url));
  // tenant-b trips first: its event occupies /hang, which never answers, for the rest of the file
  await tripRun('tenant-b', 'run-b1');
  await receiver.waitFor((rs) => tripsOf(rs, 'tenant-b', 'run-b1').some((r) => r.path === '/hang'));
  await tripRun('tenant-a', 'run-a1');
  await receiver.waitFor((rs) => ['/platform', '/tenant-a'].every((p) => tripsOf(rs, 'tenant-a', 'run-a1').some((r) => r.path === p)));
  await receiver.waitFor(() => receiver.at('/slack').some((r) => r.body.includes('run run-a1')));
});

afterAll(async () => {
  await service?.stop();
  await receiver?.close();
  delete process.env[SECRET_ENV];
});

describe('webhook notifications', () => {
  it('signs the body with a timestamp: the secret verifies it, another secret does not', () => {
    const [request] = tripsOf(receiver.at('/platform'), 'tenant-a', 'run-a1');
    const header = String(request!.headers['breakwater-signature']);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    // what docs/notifications.md tells a receiver to compute: HMAC-SHA256 of "<t>.<body>"
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]+)$/.exec(header)!;
    expect(v1).toBe(createHmac('sha256', SECRET).update(`${t}.${request!.body}`).digest('hex'));
    expect(v1).not.toBe(createHmac('sha256', TENANT_SECRET).update(`${t}.${request!.body}`).digest('hex'));
    const now = Math.floor(Date.now() / 1000);
    expect(verifySignature(header, request!.body, SECRET, now)).toBe(true);
    expect(verifySignature(header, request!.body, TENANT_SECRET, now)).toBe(false);
    expect(verifySignature(header, `${request!.body} `, SECRET, now)).toBe(false);
    // a replay an hour later is refused by the timestamp
    expect(verifySignature(header, request!.body, SECRET, now + 3600)).toBe(false);
    const [tenantRequest] = tripsOf(receiver.at('/tenant-a'), 'tenant-a', 'run-a1');
    expect(verifySignature(String(tenantRequest!.headers['breakwater-signature']), tenantRequest!.body, TENANT_SECRET, now)).toBe(true);
  });

  it('sends the event the breakerEvents subscription serves, with an id receivers can dedupe on', async () => {
    const subscribers = service.core.bus.subscriberCount();
    const events = subscribeSse<{ breakerEvents: Record<string, unknown> }>(
      service.graphqlUrl,
      'subscription($t: String!) { breakerEvents(tenantId: $t) { kind tenantId runId scope oldState newState metric threshold observed reason actor time details } }',
      { t: 'tenant-a' },
    );
    try {
      // the subscription must be open before the trip
      while (service.core.bus.subscriberCount() === subscribers) await new Promise((r) => setTimeout(r, 10));
      await tripRun('tenant-a', 'run-a2');
      const streamed = await events.waitFor((m) => m.breakerEvents.runId === 'run-a2' && m.breakerEvents.newState === 'OPEN');
      await receiver.waitFor((rs) => tripsOf(rs, 'tenant-a', 'run-a2').some((r) => r.path === '/platform'));
      const [request] = tripsOf(receiver.at('/platform'), 'tenant-a', 'run-a2');
      const sent = payload(request!);
      expect(sent.event).toEqual(streamed.breakerEvents);
      expect(sent.id).toMatch(/^tenant-a\/\d+$/);
      expect(request!.headers['breakwater-event-id']).toBe(sent.id);
      expect(request!.headers['breakwater-event-type']).toBe('trip');
    } finally {
      events.close();
    }
  });

  it('retries a 500 and then delivers, with the same event id each time', async () => {
    await receiver.waitFor(() => tripsOf(receiver.at('/flaky'), 'tenant-a', 'run-a1').length >= 2);
    const [first, second] = tripsOf(receiver.at('/flaky'), 'tenant-a', 'run-a1');
    expect(first!.res.statusCode).toBe(500);
    expect(payload(second!).id).toBe(payload(first!).id);
    expect(second!.headers['breakwater-event-id']).toBe(first!.headers['breakwater-event-id']);
    expect(second!.body).toBe(first!.body);
    expect(await counterValue(service, 'breakwater_webhook_retries_total', { endpoint: 'notifications.webhooks[1]' })).toBeGreaterThanOrEqual(1);
    expect(await counterValue(service, 'breakwater_webhook_delivered_total', { endpoint: 'notifications.webhooks[1]' })).toBeGreaterThanOrEqual(1);
  });

  it('waits as long as Retry-After says before retrying', async () => {
    await receiver.waitFor(() => tripsOf(receiver.at('/retry-after'), 'tenant-a', 'run-a1').length >= 2);
    const [first, second] = tripsOf(receiver.at('/retry-after'), 'tenant-a', 'run-a1');
    // the configured backoff is 20 ms; Retry-After: 1 asks for a second
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
    expect(payload(second!).id).toBe(payload(first!).id);
  });

  it('a webhook endpoint that never answers does not hold up a HALT on its way to a GraphQL subscriber', async () => {
    const decisions = subscribeSse<{ decisions: { action: string } }>(service.graphqlUrl, 'subscription($t: String!, $r: String) { decisions(tenantId: $t, runId: $r) { action } }', {
      t: 'tenant-a',
      r: 'run-a3',
    });
    try {
      await decisions.waitFor((m) => m.decisions.action === 'ALLOW');
      await tripRun('tenant-a', 'run-a3');
      await decisions.waitFor((m) => m.decisions.action === 'HALT');
      // /hang still holds tenant-b's first event, unanswered, with its 60 s timeout far off
      const held = receiver.at('/hang');
      expect(held.length).toBe(1);
      expect(payload(held[0]!).event.runId).toBe('run-b1');
      expect(held[0]!.res.headersSent).toBe(false);
      expect(service.core.bus.latest('tenant-a', 'run-a3').action).toBe('HALT');
    } finally {
      decisions.close();
    }
  });

  it("a tenant's endpoint receives only that tenant's events; a platform-wide one receives all", async () => {
    await tripRun('tenant-b', 'run-b2');
    await receiver.waitFor((rs) => tripsOf(rs, 'tenant-b', 'run-b2').some((r) => r.path === '/tenant-b') && tripsOf(rs, 'tenant-b', 'run-b2').some((r) => r.path === '/platform'));
    const a = receiver.at('/tenant-a');
    const b = receiver.at('/tenant-b');
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    expect(a.every((r) => payload(r).tenantId === 'tenant-a' && payload(r).event.tenantId === 'tenant-a')).toBe(true);
    expect(b.every((r) => payload(r).tenantId === 'tenant-b' && payload(r).event.tenantId === 'tenant-b')).toBe(true);
    const platformTenants = new Set(receiver.at('/platform').map((r) => payload(r).tenantId));
    expect(platformTenants).toEqual(new Set(['tenant-a', 'tenant-b']));
  });

  it('notifies an operator forcing a breaker open over GraphQL as a trip', async () => {
    const res = await gql(service.graphqlUrl, 'mutation { forceOpenBreaker(tenantId: "tenant-a", runId: "run-forced", reason: "maintenance") { state } }');
    expect(res.errors).toBeUndefined();
    await receiver.waitFor((rs) => tripsOf(rs, 'tenant-a', 'run-forced').some((r) => r.path === '/tenant-a'));
    const sent = payload(tripsOf(receiver.at('/tenant-a'), 'tenant-a', 'run-forced')[0]!);
    expect(sent.event).toMatchObject({ kind: 'operator_action', newState: 'FORCED_OPEN', reason: 'maintenance' });
  });

  it("escalates tenant-a's third trip within the hour to every endpoint that asked for escalations", async () => {
    await receiver.waitFor((rs) => rs.some((r) => r.path === '/tenant-a' && payload(r).type === 'escalation'));
    const escalations = receiver.requests.filter((r) => r.headers['breakwater-event-type'] === 'escalation').map((r) => r.path);
    expect(new Set(escalations)).toEqual(new Set(['/platform', '/tenant-a']));
  });

  it('sends Slack a one-line { text } summary', () => {
    const slack = receiver.at('/slack').map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(slack.length).toBeGreaterThan(0);
    for (const body of slack) {
      expect(Object.keys(body)).toEqual(['text']);
      expect(body.text).not.toContain('\n');
    }
    const a1 = slack.find((b) => String(b.text).includes('run run-a1'));
    expect(a1?.text).toMatch(/^Breakwater: breaker tripped \(tenant tenant-a, run run-a1, RUN CLOSED → OPEN\): /);
  });
});
