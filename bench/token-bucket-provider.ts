// The model provider at the edge of the shared-quota scenario: one token bucket shared by every
// tenant, as a provider's per-key quota is. A call is admitted while the bucket is not empty and
// charged in full (a provider knows the output tokens only after generating them), so a big caller
// overdraws it and everyone gets 429 with retry-after until it has refilled. A real HTTP server, so
// that the agents' model calls are real requests.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProviderSpec {
  /** tokens the bucket holds when full: the quota every tenant shares */
  capacity: number;
  refillPerSecond: number;
  /** how long a granted call takes to answer */
  latencyMs: number;
}

export interface ModelAnswer {
  inputTokens: number;
  outputTokens: number;
}

export interface MockProvider {
  url: string;
  /** tokens in the bucket now */
  level(): number;
  /** granted and refused (429) calls per tenant */
  granted: Map<string, number>;
  refused: Map<string, number>;
  close(): Promise<void>;
}

/** A 429 from the provider, with the status where the SDK's span helpers look for it. */
export class QuotaExceededError extends Error {
  readonly status = 429;
  constructor(readonly headers: Record<string, string>) {
    super('provider quota exceeded');
  }
}

async function body(req: IncomingMessage): Promise<{ tenant: string; inputTokens: number; outputTokens: number }> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return JSON.parse(text) as { tenant: string; inputTokens: number; outputTokens: number };
}

export async function startMockProvider(spec: ProviderSpec): Promise<MockProvider> {
  let tokens = spec.capacity;
  let at = performance.now();
  const refill = () => {
    const now = performance.now();
    tokens = Math.min(spec.capacity, tokens + ((now - at) * spec.refillPerSecond) / 1000);
    at = now;
  };
  const granted = new Map<string, number>();
  const refused = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const server = createServer((req, res) => {
    body(req).then(
      ({ tenant, inputTokens, outputTokens }) => {
        refill();
        const cost = inputTokens + outputTokens;
        if (tokens <= 0) {
          bump(refused, tenant);
          const retryAfter = String(Math.max(1, Math.ceil(-tokens / spec.refillPerSecond)));
          res.writeHead(429, { 'content-type': 'application/json', 'retry-after': retryAfter }).end('{"error":"rate_limit_exceeded"}');
          return;
        }
        tokens -= cost;
        bump(granted, tenant);
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json', 'x-ratelimit-remaining-tokens': String(Math.floor(tokens)) });
          res.end(JSON.stringify({ inputTokens, outputTokens } satisfies ModelAnswer));
        }, spec.latencyMs);
      },
      () => res.writeHead(400).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    level: () => (refill(), tokens),
    granted,
    refused,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

/** One model call: resolves with the usage granted, throws QuotaExceededError on a 429. */
export async function callModel(url: string, tenant: string, inputTokens: number, outputTokens: number): Promise<ModelAnswer> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify({ tenant, inputTokens, outputTokens }) });
  const text = await res.text();
  if (res.status === 429) throw new QuotaExceededError(Object.fromEntries(res.headers));
  if (!res.ok) throw new Error(`provider answered ${res.status}`);
  return JSON.parse(text) as ModelAnswer;
}
