import { connect, type Socket } from 'node:net';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Service } from '../../src/app/service.js';
import { allowDecision, type Action } from '../../src/contracts/decision.js';
import { subscribeSse } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';

// A graphql-sse client that stops reading was buffered without limit: graphql-sse queued every
// decision for it. A slow reader now gets latest-state semantics: what its socket cannot take
// waits in its bounded subscriber queue, where a newer decision for its run supersedes an older.
// Counted over the wire: once the reader resumes it receives a bounded number of decisions (what
// the sockets held, then the latest), not every one published while it was stalled.

const TOKEN_A = 'tenant-a-token-0123456789abcdef';
const TOKEN_B = 'tenant-b-token-0123456789abcdef';
const POLICY = `
auth:
  adminTokens: ["admin-token-0123456789abcdef"]
  tenants:
    tenant-a: { apiTokens: ["${TOKEN_A}"] }
    tenant-b: { apiTokens: ["${TOKEN_B}"] }
`;
const QUERY = 'subscription($t: String!, $r: String) { decisions(tenantId: $t, runId: $r) { action reason } }';
/** decisions published while the reader is stalled, each about 8 KB: far more than loopback's socket buffers hold */
const PUBLISHED = 20_000;
const REASON = 'x'.repeat(8 * 1024);
const LAST = 'the last decision';

let service: Service;
beforeAll(async () => {
  service = await startWithPolicy(POLICY);
});
afterAll(async () => service?.stop());

const decide = (tenantId: string, runId: string, action: Action, reason: string) =>
  service.core.bus.publish({ ...allowDecision(tenantId, runId), action, state: action === 'ALLOW' ? 'CLOSED' : 'OPEN', reason });

/**
 * Publishes a flood of changes to tenant-a's run `slow` while its reader is stalled, checking that
 * tenant-b's subscriber gets each of its own decisions meanwhile; then the last decision.
 */
async function flood(): Promise<void> {
  const other = subscribeSse<{ decisions: { action: string; reason: string } }>(service.graphqlUrl, QUERY, { t: 'tenant-b', r: 'b' }, TOKEN_B);
  try {
    await other.waitFor(() => true);
    for (let i = 0; i < PUBLISHED; i++) {
      decide('tenant-a', 'slow', i % 2 === 0 ? 'HALT' : 'WARN', REASON);
      if (i % 50 === 0) await yieldToIo();
      if (i % 1_000 === 999) {
        const reason = `b after ${i + 1}`;
        decide('tenant-b', 'b', i % 2000 === 999 ? 'HALT' : 'WARN', reason);
        await other.waitFor((m) => m.decisions.reason === reason, 5_000);
      }
    }
    expect(other.errors).toEqual([]);
  } finally {
    other.close();
  }
  decide('tenant-a', 'slow', 'ALLOW', LAST);
}

/** Reads what `socket` holds and what comes after, up to the last decision; counts SSE messages. */
function readToLast(socket: Socket): Promise<number> {
  const marker = 'event: next';
  // Each tail is one character shorter than its string: it joins a match split between chunks
  // and never holds a whole one, so nothing is counted twice.
  let markerTail = '';
  let lastTail = '';
  let count = 0;
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      count += (markerTail + text).split(marker).length - 1;
      if ((lastTail + text).includes(LAST)) resolve(count);
      markerTail = (markerTail + text).slice(-(marker.length - 1));
      lastTail = (lastTail + text).slice(-(LAST.length - 1));
    });
    socket.on('error', reject);
    socket.resume();
  });
}

/** A raw HTTP/1.1 request on a socket of its own, so the test decides when its response is read. */
function request(method: string, path: string, headers: Record<string, string>, body = ''): Socket {
  const socket = connect(Number(new URL(service.graphqlUrl).port), '127.0.0.1');
  const head = Object.entries({ Host: 'localhost', Authorization: `Bearer ${TOKEN_A}`, 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  socket.write([`${method} ${path} HTTP/1.1`, ...head.map(([k, v]) => `${k}: ${v}`), '', body].join('\r\n'));
  return socket;
}

/** Stops reading `socket` once the subscription's first decision has arrived. */
function stallAfterFirstDecision(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('"action":"ALLOW"')) return;
      socket.off('data', onData);
      socket.pause();
      resolve();
    };
    socket.on('data', onData);
  });
}

const operation = (extensions?: Record<string, unknown>) => JSON.stringify({ query: QUERY, variables: { t: 'tenant-a', r: 'slow' }, extensions });
const SSE = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };

/** Each way to subscribe over SSE, as a socket whose response carries the subscription's messages. */
const SSE_MODES: [string, () => Promise<Socket>][] = [
  ['graphql-sse, one stream per operation', async () => request('POST', '/graphql/stream', SSE, operation())],
  [
    'graphql-sse, single-connection mode',
    async () => {
      const bearer = { authorization: `Bearer ${TOKEN_A}` };
      const stream = `${service.graphqlUrl}/graphql/stream`;
      const streamToken = await (await fetch(stream, { method: 'PUT', headers: bearer })).text();
      const socket = request('GET', '/graphql/stream', { Accept: 'text/event-stream', 'X-GraphQL-Event-Stream-Token': streamToken });
      await new Promise((resolve) => socket.once('data', resolve));
      const posted = await fetch(stream, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json', 'x-graphql-event-stream-token': streamToken },
        body: operation({ operationId: 'slow' }),
      });
      expect(posted.status).toBe(202);
      return socket;
    },
  ],
  ["GraphQL Yoga's own SSE on /graphql", async () => request('POST', '/graphql', SSE, operation())],
];

describe('a subscriber that stops reading', () => {
  it.each(SSE_MODES)('over %s is given the latest decision, not every one held for it, and other tenants carry on', async (_mode, open) => {
    const socket = await open();
    try {
      await stallAfterFirstDecision(socket);
      await flood();
      const received = await readToLast(socket);
      // what the two sockets' kernel buffers held, then the latest
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThan(PUBLISHED / 4);
    } finally {
      socket.destroy();
    }
  });

  it('over graphql-ws is bounded by its send buffer the same way', async () => {
    const ws = new WebSocket(`${service.graphqlUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    try {
      await new Promise<void>((resolve, reject) => {
        ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${TOKEN_A}` } })));
        ws.on('error', reject);
        const onMessage = (data: Buffer) => {
          const message = JSON.parse(data.toString()) as { type: string };
          if (message.type === 'connection_ack') {
            ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: QUERY, variables: { t: 'tenant-a', r: 'slow' } } }));
          } else if (message.type === 'next') {
            ws.off('message', onMessage);
            ws.pause();
            resolve();
          }
        };
        ws.on('message', onMessage);
      });

      await flood();
      let received = 0;
      await new Promise<void>((resolve) => {
        ws.on('message', (data: Buffer) => {
          received++;
          if (data.toString().includes(LAST)) resolve();
        });
        ws.resume();
      });
      expect(received).toBeLessThan(PUBLISHED / 4);
    } finally {
      ws.terminate();
    }
  });
});
