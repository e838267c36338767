// A stand-in for Breakwater's decisions subscription: the graphql-sse protocol (distinct connections
// mode) over real HTTP, with decisions pushed by the test, so every action and connection failure
// can be produced on demand without a ClickHouse behind it.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Decision } from '../../src/contracts/decision.js';

export interface FakeStream {
  tenantId: string;
  authorization: string | undefined;
  res: ServerResponse;
}

let sequence = 1_000;

/** A complete decision with defaults (ALLOW, CLOSED, a fresh sequence). */
export function decision(fields: Partial<Decision> & { tenantId: string }): Decision {
  return {
    scope: fields.runId === undefined ? 'TENANT' : 'RUN',
    action: 'ALLOW',
    state: 'CLOSED',
    reason: '',
    metric: '',
    threshold: 0,
    observed: 0,
    retryAfterMs: 0,
    sequence: ++sequence,
    issuedAt: new Date().toISOString(),
    ...fields,
  };
}

export class FakeDecisionServer {
  readonly streams = new Set<FakeStream>();
  readonly sockets = new Set<Socket>();
  /** subscription requests received */
  requests = 0;
  /** what a new subscriber gets first, per tenant (besides a tenant-wide ALLOW) */
  readonly snapshot = new Map<string, Decision[]>();
  /** the run policy the SDK's policy query gets per tenant ('refuse': an error); default none of its thresholds */
  readonly policies = new Map<string, { run: Record<string, number>; warnFraction: number; breaker: { cooldownMs: number } } | 'refuse'>();
  /** answer new subscriptions with this status instead (e.g. 401) */
  refuseWith: number | undefined;
  #server: Server;
  url = '';

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(port = 0): Promise<FakeDecisionServer> {
    const server = createServer();
    const fake = new FakeDecisionServer(server);
    server.on('request', (req, res) => fake.#handle(req, res));
    server.on('connection', (socket) => {
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return fake;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** Sends a decision to every open stream of its tenant. */
  push(d: Decision): void {
    for (const stream of this.streams) if (stream.tenantId === d.tenantId) send(stream.res, d);
  }

  async waitForStreams(count: number, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.streams.size < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} open streams, have ${this.streams.size}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Breaks every connection, as a crashed server would. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
    this.streams.clear();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      // The SDK's query for its run thresholds (by default none, so nothing is decided locally).
      const query = JSON.parse(body) as { query: string; variables: { tenantId: string } };
      if (/^\s*query\b/.test(query.query)) {
        const policy = this.policies.get(query.variables.tenantId) ?? { run: {}, warnFraction: 0.8, breaker: { cooldownMs: 60_000 } };
        if (policy === 'refuse') res.writeHead(403, { 'content-type': 'application/json' }).end('{"errors":[{"message":"refused"}]}');
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { tenant: { policy } } }));
        return;
      }
      this.requests++;
      if (this.refuseWith !== undefined) {
        res.writeHead(this.refuseWith, { 'content-type': 'application/json' }).end('{"errors":[{"message":"refused"}]}');
        return;
      }
      const { variables } = JSON.parse(body) as { variables: { tenantId: string } };
      const stream: FakeStream = { tenantId: variables.tenantId, authorization: req.headers.authorization, res };
      res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'keep-alive', 'cache-control': 'no-cache' });
      res.flushHeaders();
      this.streams.add(stream);
      res.on('close', () => this.streams.delete(stream));
      send(res, decision({ tenantId: stream.tenantId }));
      for (const d of this.snapshot.get(stream.tenantId) ?? []) send(res, d);
    });
  }
}

function send(res: ServerResponse, d: Decision): void {
  const wire = { ...d, runId: d.runId ?? null, fallbackModel: d.fallbackModel ?? null, tier: d.tier ?? null, degraded: d.degraded ?? false };
  res.write(`event: next\ndata: ${JSON.stringify({ data: { decisions: wire } })}\n\n`);
}
