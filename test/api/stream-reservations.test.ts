import { buildSchema } from 'graphql';
import { createClient } from 'graphql-sse';
import { createHandler } from 'graphql-sse/lib/use/fetch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeReservedStream, MAX_RESERVATIONS_PER_CALLER, StreamReservations } from '../../src/api/stream-reservations.js';
import type { Service } from '../../src/app/service.js';
import { startWithPolicy } from '../helpers/service.js';

// graphql-sse's single-connection mode reserves a stream with PUT and opens it with GET. A
// reservation needs a valid credential, belongs to it, and one credential may hold only a few.

const TOKEN_A = 'tenant-a-token-0123456789abcdef';
const TOKEN_B = 'tenant-b-token-0123456789abcdef';
const POLICY = `
auth:
  adminTokens: ["admin-token-0123456789abcdef"]
  tenants:
    tenant-a: { adminTokens: ["${TOKEN_A}"] }
    tenant-b: { adminTokens: ["${TOKEN_B}"] }
`;

let service: Service;
let stream: string;
beforeAll(async () => {
  service = await startWithPolicy(POLICY);
  stream = `${service.graphqlUrl}/graphql/stream`;
});
afterAll(async () => service?.stop());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const reserve = (headers: Record<string, string> = {}) => fetch(stream, { method: 'PUT', headers });
const open = (streamToken: string, headers: Record<string, string> = {}) =>
  fetch(stream, { headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': streamToken, ...headers } });

describe('graphql-sse stream reservations', () => {
  it('refuses a reservation without a valid credential', async () => {
    for (const headers of [{}, bearer('wrong-token-0123456789abcdef')]) {
      const res = await reserve(headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ errors: [{ message: 'missing or invalid token', extensions: { code: 'UNAUTHENTICATED' } }] });
    }
  });

  it("opens a stream only with the credential that reserved it", async () => {
    const res = await reserve(bearer(TOKEN_A));
    expect(res.status).toBe(201);
    const streamToken = await res.text();
    expect((await open(streamToken)).status).toBe(401);
    expect((await open(streamToken, bearer(TOKEN_B))).status).toBe(404);
    const opened = await open(streamToken, bearer(TOKEN_A));
    expect(opened.status).toBe(200);
    expect(opened.headers.get('content-type')).toMatch(/text\/event-stream/);
    await opened.body?.cancel();
  });

  it('bounds the unopened reservations of one credential, not of the others', async () => {
    const held: string[] = [];
    for (let attempt = 0; attempt <= MAX_RESERVATIONS_PER_CALLER; attempt++) {
      const res = await reserve(bearer(TOKEN_B));
      if (res.status !== 201) {
        expect(res.status).toBe(429);
        break;
      }
      held.push(await res.text());
    }
    expect(held).toHaveLength(MAX_RESERVATIONS_PER_CALLER);
    expect((await reserve(bearer(TOKEN_B))).status).toBe(429);
    const other = await reserve(bearer(TOKEN_A));
    expect(other.status).toBe(201);
    await other.text();
    // opening one gives its place back
    const opened = await open(held[0]!, bearer(TOKEN_B));
    expect(opened.status).toBe(200);
    await opened.body?.cancel();
    expect((await reserve(bearer(TOKEN_B))).status).toBe(201);
  });

  it("serves graphql-sse's own client in single-connection mode", async () => {
    const client = createClient({ url: stream, singleConnection: true, headers: bearer(TOKEN_A), retryAttempts: 0 });
    try {
      const result = await new Promise<unknown>((resolve, reject) => {
        client.subscribe({ query: '{ tenant(id: "tenant-a") { id } }' }, { next: resolve, error: reject, complete: () => {} });
      });
      expect(result).toEqual({ data: { tenant: { id: 'tenant-a' } } });
    } finally {
      client.dispose();
    }
  });
});

describe('guessing tokens on the stream path', () => {
  it('counts in the failed-auth limiter like any other request', async () => {
    const statuses: number[] = [];
    for (let guess = 0; guess < 20; guess++) statuses.push((await reserve(bearer(`guess-${guess}-0123456789abcdef`))).status);
    expect(new Set(statuses)).toEqual(new Set([401]));
    const next = await fetch(`${service.graphqlUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer('guess-20-0123456789abcdef') },
      body: JSON.stringify({ query: '{ tenants { totalCount } }' }),
    });
    expect(next.status).toBe(429);
    // the tenant's own token, seen from this address before, still reserves
    expect((await reserve(bearer(TOKEN_A))).status).toBe(201);
  });
});

describe('an unopened reservation', () => {
  it("is freed in graphql-sse's own handler once its time is up", async () => {
    const url = 'http://localhost/graphql/stream';
    let handler: (request: Request) => Promise<Response> = async () => new Response(null, { status: 500 });
    const reservations = new StreamReservations({ caller: () => 'caller', ttlMs: 50, maxPerCaller: 1, free: (t) => freeReservedStream(handler, Request, url, t) });
    handler = createHandler({ schema: buildSchema('type Query { hello: String }'), authenticate: (req) => reservations.authenticate(req.raw) });
    const streamToken = await (await handler(new Request(url, { method: 'PUT' }))).text();
    const named = { 'x-graphql-event-stream-token': streamToken };
    expect((await handler(new Request(url, { method: 'PUT' }))).status).toBe(429);
    // a client cannot name its own stream, which would reserve past the count and the expiry
    expect((await handler(new Request(url, { method: 'PUT', headers: { 'x-graphql-event-stream-token': 'mine' } }))).status).toBe(400);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(reservations.size).toBe(0);
    // graphql-sse no longer holds it: opening it is a distinct-connection request without a query
    const late = await handler(new Request(url, { headers: { accept: 'text/event-stream', ...named } }));
    expect(late.status).toBe(400);
    expect((await handler(new Request(url, { method: 'PUT' }))).status).toBe(201);
  });
});
