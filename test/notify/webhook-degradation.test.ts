import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans, runSteps, type StepSpec } from '../helpers/spans.js';
import { startWebhookReceiver, type ReceivedRequest, type WebhookReceiver } from '../helpers/webhook-receiver.js';

// Tier changes and consent requests of the degradation path reach webhooks, from a real 5xx storm
// sent as OTLP spans; a tenant's endpoint hears only its own tenant.

const SECRET = 'degradation-hook-secret-0123456789';

let receiver: WebhookReceiver;
let service: Service;

const ok: StepSpec = { model: 'gpt-4o', attributes: { 'gen_ai.provider.name': 'openai' } };
const serverError: StepSpec = { model: 'gpt-4o', outputTokens: 0, attributes: { 'gen_ai.provider.name': 'openai', 'http.response.status_code': 503, 'error.type': '503' } };

async function send(tenant: string, steps: StepSpec[]): Promise<void> {
  expect((await postSpans(service.otlpUrl, runSteps(tenant, `${tenant}-run`, steps))).status).toBe(200);
}

interface Sent {
  type: string;
  tenantId: string;
  event: { oldState: string; newState: string; kind: string };
}
const sent = (r: ReceivedRequest) => JSON.parse(r.body) as Sent;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  service = await startWithPolicy(`
degradation:
  providerHealth: { minimumCalls: 5, failureRateThreshold: 0.5, sharedMinTenants: 2 }
  defaults:
    tiers:
      - { tier: 0, provider: openai, model: gpt-4o }
      - { tier: 1, provider: azure.ai.openai, model: gpt-4o }
  tenants:
    careful: { consent: { required: true, fromTier: 1 } }
notifications:
  webhooks: [{ url: "${receiver.url}/platform", secret: "${SECRET}", events: [tier_change, consent_request] }]
  tenants:
    careful:
      webhooks: [{ url: "${receiver.url}/careful", secret: "${SECRET}" }]
`);
});

afterAll(async () => {
  await service?.stop();
  await receiver?.close();
});

describe('degradation notifications', () => {
  it('sends tier changes and consent requests, each tenant endpoint only its own', async () => {
    for (const tenant of ['flex', 'other', 'careful']) await send(tenant, [ok]);
    await send('flex', Array.from({ length: 6 }, () => serverError));
    await send('other', Array.from({ length: 6 }, () => serverError));
    await receiver.waitFor((rs) => rs.some((r) => r.path === '/platform' && sent(r).tenantId === 'flex' && sent(r).type === 'tier_change'));
    const flex = receiver.at('/platform').map(sent).find((s) => s.tenantId === 'flex' && s.type === 'tier_change')!;
    expect(flex.event).toMatchObject({ kind: 'degradation', oldState: 'TIER_0', newState: 'TIER_1' });

    await send('careful', [ok]);
    await receiver.waitFor((rs) => rs.some((r) => r.path === '/careful' && sent(r).type === 'consent_request'));
    expect(receiver.at('/careful').map(sent).find((s) => s.type === 'consent_request')!.event).toMatchObject({ newState: 'CONSENT_PENDING' });
    await receiver.waitFor((rs) => rs.some((r) => r.path === '/platform' && sent(r).tenantId === 'careful' && sent(r).type === 'consent_request'));

    expect(receiver.at('/careful').every((r) => sent(r).tenantId === 'careful')).toBe(true);
    // the platform endpoint asked for two types only: no trips of the provider breaker reach it
    expect(new Set(receiver.at('/platform').map((r) => sent(r).type))).toEqual(new Set(['tier_change', 'consent_request']));
  });
});
