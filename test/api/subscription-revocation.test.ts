import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { allowDecision } from '../../src/contracts/decision.js';
import { connectSse, subscribeSse, subscribeWs, subscribeYogaSse, type SubscriptionHandle } from '../helpers/graphql.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { writePolicy } from '../helpers/spans.js';

// A token removed from the policy kept receiving decisions on the subscriptions it had opened.
// A reload now ends them on every transport, and those of a token that changed role or tenant,
// while every other token's streams carry on.

const REVOKED = 'tenant-a-revoked-0123456789abcdef';
const KEPT = 'tenant-a-kept-0123456789abcdef';
const PROMOTED = 'tenant-a-promoted-0123456789abcdef';
const MOVED = 'tenant-a-moved-0123456789abcdef';
const TOKEN_B = 'tenant-b-token-0123456789abcdef';
const BEFORE = `
auth:
  adminTokens: ["admin-token-0123456789abcdef"]
  tenants:
    tenant-a: { apiTokens: ["${REVOKED}", "${KEPT}", "${PROMOTED}", "${MOVED}"] }
    tenant-b: { apiTokens: ["${TOKEN_B}"] }
`;
const AFTER = `
auth:
  adminTokens: ["admin-token-0123456789abcdef"]
  tenants:
    tenant-a: { apiTokens: ["${KEPT}"], adminTokens: ["${PROMOTED}"] }
    tenant-b: { apiTokens: ["${TOKEN_B}"] }
    tenant-c: { apiTokens: ["${MOVED}"] }
`;
const DECISIONS = 'subscription($t: String!, $r: String) { decisions(tenantId: $t, runId: $r) { runId action } }';

interface Msg {
  decisions: { runId: string | null; action: string };
}

let service: Service;
let path: string;
const cleanups: (() => void)[] = [];
beforeAll(async () => {
  const dataDir = tempDataDir();
  path = writePolicy(dataDir, BEFORE);
  service = await startTestService({ dataDir, policyFile: path, policyFileExplicit: true });
});
afterAll(async () => {
  for (const cleanup of cleanups) cleanup();
  await service?.stop();
});

type Transport = 'ws' | 'sse' | 'single' | 'yoga';
const TRANSPORTS: Transport[] = ['ws', 'sse', 'single', 'yoga'];

interface Opened {
  sub: SubscriptionHandle<Msg>;
  tenantId: string;
  runId: string;
}

function subscribe(transport: Transport, token: string, tenantId: string, runId: string): Opened {
  const url = service.graphqlUrl;
  const variables = { t: tenantId, r: runId };
  let sub: SubscriptionHandle<Msg>;
  if (transport === 'ws') sub = subscribeWs<Msg>(url, DECISIONS, variables, token);
  else if (transport === 'sse') sub = subscribeSse<Msg>(url, DECISIONS, variables, token);
  else if (transport === 'yoga') sub = subscribeYogaSse<Msg>(url, DECISIONS, variables, token);
  else {
    const client = connectSse(url, token, { singleConnection: true });
    cleanups.push(() => client.dispose());
    sub = client.subscribe<Msg>(DECISIONS, variables);
  }
  cleanups.push(() => sub.close());
  return { sub, tenantId, runId };
}

const halt = ({ tenantId, runId }: Opened) => service.core.bus.publish({ ...allowDecision(tenantId, runId), action: 'HALT', state: 'OPEN', reason: 'x' });

/** How a subscription was ended: graphql-ws closes the socket, SSE ends the operation with a GraphQL error. */
function ending(sub: SubscriptionHandle<Msg>): string {
  const error = sub.errors[0] as { code?: number; reason?: string } | unknown[];
  if (Array.isArray(error)) return JSON.stringify(error);
  return `close ${error.code} ${error.reason}`;
}

/** A single-connection stream reserved and opened by hand, as graphql-sse's client does; `ended` once the server ends it. */
async function openStream(token: string): Promise<{ ended: () => boolean }> {
  const url = `${service.graphqlUrl}/graphql/stream`;
  const put = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${token}` } });
  expect(put.status).toBe(201);
  const abort = new AbortController();
  cleanups.push(() => abort.abort());
  const get = await fetch(url, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, 'x-graphql-event-stream-token': await put.text() }, signal: abort.signal });
  expect(get.status).toBe(200);
  let ended = false;
  void (async () => {
    const reader = get.body!.getReader();
    while (!(await reader.read()).done);
    ended = true;
  })().catch(() => {});
  return { ended: () => ended };
}

describe('a policy reload that revokes or changes a token', () => {
  it('ends its streams on every transport, and no other token’s', async () => {
    const ended = [
      ...TRANSPORTS.map((t) => subscribe(t, REVOKED, 'tenant-a', `revoked-${t}`)),
      subscribe('sse', PROMOTED, 'tenant-a', 'promoted-sse'),
      subscribe('ws', PROMOTED, 'tenant-a', 'promoted-ws'),
      subscribe('sse', MOVED, 'tenant-a', 'moved-sse'),
    ];
    const continuing = [
      ...TRANSPORTS.map((t) => subscribe(t, KEPT, 'tenant-a', `kept-${t}`)),
      ...TRANSPORTS.map((t) => subscribe(t, TOKEN_B, 'tenant-b', `b-${t}`)),
    ];
    for (const { sub } of [...ended, ...continuing]) await sub.waitFor((m) => m.decisions.action === 'ALLOW');
    const revokedStream = await openStream(REVOKED);
    const keptStream = await openStream(KEPT);

    const auth = service.core.auth();
    writeFileSync(path, AFTER);
    await vi.waitFor(() => expect(service.core.auth()).not.toBe(auth), { timeout: 10_000 });

    await vi.waitFor(() => expect(ended.map(({ sub }) => sub.errors.length)).toEqual(ended.map(() => 1)), { timeout: 5_000 });
    for (const [i, { sub }] of ended.entries()) {
      const transport = i < TRANSPORTS.length ? TRANSPORTS[i] : i === TRANSPORTS.length + 1 ? 'ws' : 'sse';
      expect(ending(sub)).toMatch(
        transport === 'ws'
          ? /^close 4403 Forbidden: the token was revoked or changed$/
          : /^\[\{"message":"the token of this subscription was revoked or changed; subscribe again with a valid token".*"extensions":\{"code":"TOKEN_REVOKED"\}\}\]$/,
      );
    }

    for (const opened of [...ended, ...continuing]) halt(opened);
    for (const { sub } of continuing) {
      await sub.waitFor((m) => m.decisions.action === 'HALT');
      expect(sub.errors).toEqual([]);
    }
    for (const { sub } of ended) expect(sub.messages.map((m) => m.decisions.action)).toEqual(['ALLOW']);
    // a single-connection stream ends with its operations, not only they
    await vi.waitFor(() => expect(revokedStream.ended()).toBe(true), { timeout: 5_000 });
    expect(keptStream.ended()).toBe(false);
  });
});
