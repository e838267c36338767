import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Date.now() when the body was read */
  at: number;
  /** the same request's answer, for a route that holds it */
  res: ServerResponse;
}

/** How a route answers its nth request (1-based) for one event id; undefined: it never answers. */
export type Route = (attempt: number, req: ReceivedRequest) => { status: number; headers?: Record<string, string> } | undefined;

export interface WebhookReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** the requests a path received */
  at(path: string): ReceivedRequest[];
  waitFor(predicate: (requests: ReceivedRequest[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A real HTTP server on loopback that records every request; routes not listed answer 200. */
export async function startWebhookReceiver(routes: Record<string, Route> = {}): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const attempts = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const received: ReceivedRequest = { path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), res };
      requests.push(received);
      const key = `${path}\u0000${String(req.headers['breakwater-event-id'])}`;
      const attempt = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, attempt);
      const route = routes[path];
      const answer = route === undefined ? { status: 200 } : route(attempt, received);
      if (answer !== undefined) res.writeHead(answer.status, answer.headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    at: (path) => requests.filter((r) => r.path === path),
    async waitFor(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(requests)) {
        if (Date.now() > deadline) throw new Error(`webhook receiver: condition not met in ${timeoutMs} ms; got ${requests.map((r) => `${r.path} ${r.body.slice(0, 120)}`).join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
