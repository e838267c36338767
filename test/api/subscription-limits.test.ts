import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { allowDecision } from '../../src/contracts/decision.js';
import { connectSse, connectWs, subscribeSse, type SubscriptionHandle } from '../helpers/graphql.js';
import { capturedLog, counterValue, refusalLines, startTestService, tempDataDir } from '../helpers/service.js';
import { writePolicy } from '../helpers/spans.js';

// One WebSocket held 50,000 subscriptions, and one token could spread as many as it liked over
// connections and transports. Both are bounded; a refusal touches nothing already open.

const TOKEN_A = 'tenant-a-token-0123456789abcdef';
const TOKEN_A2 = 'tenant-a-token-2-0123456789abcdef';
const TOKEN_B = 'tenant-b-token-0123456789abcdef';
const POLICY = `
auth:
  adminTokens: ["admin-token-0123456789abcdef"]
  tenants:
    tenant-a: { apiTokens: ["${TOKEN_A}", "${TOKEN_A2}"] }
    tenant-b: { apiTokens: ["${TOKEN_B}"] }
`;
const PER_CONNECTION = 3;
const PER_TOKEN = 5;
const DECISIONS = 'subscription($t: String!, $r: String) { decisions(tenantId: $t, runId: $r) { runId action } }';

interface Msg {
  decisions: { runId: string | null; action: string };
}

let service: Service;
let url: string;
const cleanups: (() => void)[] = [];
const { logger, lines } = capturedLog();
beforeAll(async () => {
  const dataDir = tempDataDir();
  service = await startTestService({
    dataDir,
    policyFile: writePolicy(dataDir, POLICY),
    policyFileExplicit: true,
    maxSubscriptionsPerConnection: PER_CONNECTION,
    maxSubscriptionsPerToken: PER_TOKEN,
  }, logger);
  url = service.graphqlUrl;
});
afterAll(async () => {
  for (const cleanup of cleanups) cleanup();
  await service?.stop();
});

/** Ended after the tests, whatever they left open. */
function kept<T extends { close(): void } | { dispose(): void }>(o: T): T {
  cleanups.push(() => ('close' in o ? o.close() : o.dispose()));
  return o;
}

/** Waits for a subscription's first message, or for the errors it was refused with. */
async function settled(sub: SubscriptionHandle<Msg>): Promise<string> {
  await vi.waitFor(() => expect(sub.messages.length + sub.errors.length).toBeGreaterThan(0), { timeout: 5_000 });
  return sub.messages.length > 0 ? 'open' : JSON.stringify(sub.errors);
}

const halt = (tenantId: string, runId: string) => service.core.bus.publish({ ...allowDecision(tenantId, runId), action: 'HALT', state: 'OPEN', reason: 'x' });

describe('subscription limits', () => {
  it('bounds one WebSocket, leaves its other subscriptions running, and frees the count when one ends', async () => {
    const ws = kept(connectWs(url, TOKEN_A));
    const subs = [];
    for (let i = 0; i < PER_CONNECTION; i++) {
      const sub = ws.subscribe<Msg>(DECISIONS, { t: 'tenant-a', r: `ws-${i}` });
      subs.push(sub);
      expect(await settled(sub)).toBe('open');
    }
    const over = ws.subscribe<Msg>(DECISIONS, { t: 'tenant-a', r: 'ws-over' });
    const refusal = await settled(over);
    expect(refusal).toMatch(/"message":"this connection already holds 3 subscriptions; end one before starting another"/);
    expect(refusal).toMatch(/"code":"TOO_MANY_SUBSCRIPTIONS"/);
    expect(await settled(ws.subscribe<Msg>(DECISIONS, { t: 'tenant-a', r: 'ws-over-2' }))).toMatch(/TOO_MANY_SUBSCRIPTIONS/);
    expect(await counterValue(service, 'breakwater_subscriptions_refused_total', { limit: 'connection' })).toBe(2);
    // one line for the tenant, naming the token by its configured name only
    expect(refusalLines(lines, 'subscriptions_per_connection')).toEqual([expect.objectContaining({ tenantId: 'tenant-a', token: 'tenant-a/agent#1', subscriptions: 1, held: 3 })]);
    expect(JSON.stringify(lines)).not.toContain(TOKEN_A);

    halt('tenant-a', 'ws-0');
    await subs[0]!.waitFor((m) => m.decisions.action === 'HALT');

    subs[1]!.close();
    const again = ws.subscribe<Msg>(DECISIONS, { t: 'tenant-a', r: 'ws-again' });
    await vi.waitFor(async () => expect(await settled(again)).toBe('open'));
    ws.dispose();
  });

  it('bounds one token across WebSockets and SSE streams, not the other tokens', async () => {
    const held: SubscriptionHandle<Msg>[] = [];
    const ws = kept(connectWs(url, TOKEN_A2));
    for (let i = 0; i < PER_CONNECTION; i++) held.push(ws.subscribe<Msg>(DECISIONS, { t: 'tenant-a', r: `t-ws-${i}` }));
    for (let i = PER_CONNECTION; i < PER_TOKEN; i++) held.push(kept(subscribeSse<Msg>(url, DECISIONS, { t: 'tenant-a', r: `t-sse-${i}` }, TOKEN_A2)));
    for (const sub of held) expect(await settled(sub)).toBe('open');

    const overSse = kept(subscribeSse<Msg>(url, DECISIONS, { t: 'tenant-a', r: 't-over-sse' }, TOKEN_A2));
    const overWs = kept(connectWs(url, TOKEN_A2)).subscribe<Msg>(DECISIONS, { t: 'tenant-a', r: 't-over-ws' });
    const single = kept(connectSse(url, TOKEN_A2, { singleConnection: true })).subscribe<Msg>(DECISIONS, { t: 'tenant-a', r: 't-over-single' });
    for (const over of [overSse, overWs, single]) {
      expect(await settled(over)).toMatch(/this token already holds 5 subscriptions.*"code":"TOO_MANY_SUBSCRIPTIONS"/);
    }
    expect(await counterValue(service, 'breakwater_subscriptions_refused_total', { limit: 'token' })).toBe(3);
    expect(refusalLines(lines, 'subscriptions_per_token')).toEqual([expect.objectContaining({ tenantId: 'tenant-a', token: 'tenant-a/agent#2', subscriptions: 1, held: 5 })]);
    expect(JSON.stringify(lines)).not.toContain(TOKEN_A2);

    const other = kept(subscribeSse<Msg>(url, DECISIONS, { t: 'tenant-b', r: 'b' }, TOKEN_B));
    expect(await settled(other)).toBe('open');
    halt('tenant-a', 't-sse-4');
    await held[4]!.waitFor((m) => m.decisions.action === 'HALT');

    // an SSE stream that ends gives its place back
    held[3]!.close();
    await vi.waitFor(async () => {
      const retry = kept(subscribeSse<Msg>(url, DECISIONS, { t: 'tenant-a', r: 't-retry' }, TOKEN_A2));
      expect(await settled(retry)).toBe('open');
    });
    ws.dispose();
  });
});
