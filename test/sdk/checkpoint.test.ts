// checkpoint() against a stand-in subscription server: every action, how run and tenant-wide
// decisions combine, reconnection, fail-open and fail-closed, and that a checkpoint costs no I/O.

import diagnosticsChannel from 'node:diagnostics_channel';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Breakwater, BreakwaterHaltError, BreakwaterUnavailableError, type Decision } from '../../src/sdk/index.js';
import { DecisionClient } from '../../src/sdk/decision-client.js';
import { decision, FakeDecisionServer } from './fake-decisions.js';
import { memoryLogger, waitUntil } from './test-support.js';

let server: FakeDecisionServer;
const instances: Breakwater[] = [];

beforeAll(async () => {
  server = await FakeDecisionServer.start();
});

afterEach(async () => {
  await Promise.all(instances.splice(0).map((bw) => bw.shutdown()));
});

afterAll(async () => {
  await server.close();
});

let tenantCounter = 0;

async function attach(options: Partial<Parameters<typeof Breakwater.attach>[0]> = {}): Promise<Breakwater & { logger: ReturnType<typeof memoryLogger> }> {
  const logger = memoryLogger();
  const bw = await Breakwater.attach({
    tenantId: `t${++tenantCounter}`,
    graphqlUrl: server.url,
    register: false,
    logger,
    backoff: { initialMs: 20, maxMs: 100 },
    ...options,
  });
  instances.push(bw);
  return Object.assign(bw, { logger });
}

/** Pushes a decision and waits until the instance has it. */
async function deliver(bw: Breakwater, d: Decision, fake: FakeDecisionServer = server): Promise<void> {
  let seen = false;
  const off = bw.onDecision((got) => {
    if (got.sequence === d.sequence) seen = true;
  });
  fake.push(d);
  await waitUntil(() => seen, 5_000, `decision ${d.action}`);
  off();
}

describe('checkpoint applies the cached decision', () => {
  it('ALLOW when Breakwater said nothing else; the caller keeps its model', async () => {
    const bw = await attach();
    expect(bw.status()).toMatchObject({ state: 'connected', connected: true, stale: false, failMode: 'open' });
    const result = await bw.run('r1', () => bw.checkpoint({ model: 'gpt-4o' }));
    expect(result).toMatchObject({ action: 'ALLOW', model: 'gpt-4o', degraded: false, waitedMs: 0, stale: false });
    expect(result.decision).toMatchObject({ tenantId: bw.tenantId, action: 'ALLOW' });
  });

  it('HALT: awaits onHalt, then throws a BreakwaterHaltError with the decision; other runs go on', async () => {
    const order: string[] = [];
    const bw = await attach({
      onHalt: async (d, error) => {
        order.push(`onHalt ${d.runId} ${error.metric}`);
        await new Promise((r) => setTimeout(r, 30));
        order.push('saved');
      },
    });
    const halt = decision({ tenantId: bw.tenantId, runId: 'loop', action: 'HALT', state: 'OPEN', reason: 'toolCallsPerMinute 31 >= 30', metric: 'toolCallsPerMinute', threshold: 30, observed: 31, retryAfterMs: 30_000 });
    await deliver(bw, halt);

    const error = await bw.run('loop', () => bw.checkpoint()).catch((e: unknown) => e);
    order.push('thrown');
    expect(error).toBeInstanceOf(BreakwaterHaltError);
    expect(error).toMatchObject({
      name: 'BreakwaterHaltError',
      tenantId: bw.tenantId,
      runId: 'loop',
      scope: 'RUN',
      reason: 'toolCallsPerMinute 31 >= 30',
      metric: 'toolCallsPerMinute',
      threshold: 30,
      observed: 31,
      retryAfterMs: 30_000,
    });
    expect((error as BreakwaterHaltError).decision.sequence).toBe(halt.sequence);
    expect(order).toEqual(['onHalt loop toolCallsPerMinute', 'saved', 'thrown']);

    // By explicit run id too, outside any run scope.
    await expect(bw.checkpoint({ runId: 'loop' })).rejects.toBeInstanceOf(BreakwaterHaltError);
    // Another run and the tenant outside runs are untouched.
    expect((await bw.run('other', () => bw.checkpoint())).action).toBe('ALLOW');
    expect((await bw.checkpoint()).action).toBe('ALLOW');
  });

  it('a tenant-wide HALT halts every run and code outside runs; lifting it lets them go', async () => {
    const bw = await attach();
    await deliver(bw, decision({ tenantId: bw.tenantId, action: 'HALT', state: 'FORCED_OPEN', reason: 'incident 42', retryAfterMs: 60_000 }));
    await expect(bw.run('a', () => bw.checkpoint())).rejects.toMatchObject({ scope: 'TENANT', reason: 'incident 42', runId: 'a' });
    await expect(bw.checkpoint()).rejects.toBeInstanceOf(BreakwaterHaltError);
    await deliver(bw, decision({ tenantId: bw.tenantId }));
    expect((await bw.run('a', () => bw.checkpoint())).action).toBe('ALLOW');
  });

  it('THROTTLE waits the retry-after, capped by maxThrottleWaitMs', async () => {
    const bw = await attach({ maxThrottleWaitMs: 150 });
    await deliver(bw, decision({ tenantId: bw.tenantId, runId: 'slow', action: 'THROTTLE', reason: 'rate limited', retryAfterMs: 80 }));
    const started = Date.now();
    const result = await bw.checkpoint({ runId: 'slow' });
    expect(result.action).toBe('THROTTLE');
    expect(result.waitedMs).toBeGreaterThanOrEqual(60);
    expect(Date.now() - started).toBeGreaterThanOrEqual(60);
    // Once the retry-after has passed there is nothing left to wait.
    expect((await bw.checkpoint({ runId: 'slow' })).waitedMs).toBe(0);

    await deliver(bw, decision({ tenantId: bw.tenantId, runId: 'slow', action: 'THROTTLE', reason: 'daily quota', retryAfterMs: 3_600_000 }));
    const capped = await bw.checkpoint({ runId: 'slow' });
    expect(capped.waitedMs).toBeGreaterThanOrEqual(140);
    expect(capped.waitedMs).toBeLessThan(1_000);
  });

  it('DEGRADE returns the fallback model, and the caller switches back on promotion', async () => {
    const bw = await attach();
    await deliver(bw, decision({ tenantId: bw.tenantId, action: 'DEGRADE', state: 'OPEN', fallbackModel: 'gpt-4o-mini', tier: 1, degraded: true, reason: 'use gpt-4o-mini' }));
    const degraded = await bw.run('r', () => bw.checkpoint({ model: 'gpt-4o' }));
    expect(degraded).toMatchObject({ action: 'DEGRADE', model: 'gpt-4o-mini', degraded: true });
    // Promotion back: ALLOW on tier 0.
    await deliver(bw, decision({ tenantId: bw.tenantId, action: 'ALLOW', fallbackModel: 'gpt-4o', tier: 0, degraded: false }));
    expect(await bw.run('r', () => bw.checkpoint({ model: 'gpt-4o' }))).toMatchObject({ action: 'ALLOW', model: 'gpt-4o', degraded: false });
    await deliver(bw, decision({ tenantId: bw.tenantId }));
    expect(await bw.run('r', () => bw.checkpoint({ model: 'gpt-4o' }))).toMatchObject({ action: 'ALLOW', model: 'gpt-4o', degraded: false });
  });

  it('WARN calls onWarn once per warning and returns', async () => {
    const warnings: Decision[] = [];
    const bw = await attach({ onWarn: (d) => warnings.push(d) });
    const warn = decision({ tenantId: bw.tenantId, runId: 'w', action: 'WARN', metric: 'stepCount', threshold: 100, observed: 80, reason: 'stepCount at 80 %' });
    await deliver(bw, warn);
    for (let i = 0; i < 5; i++) expect((await bw.checkpoint({ runId: 'w' })).action).toBe('WARN');
    expect(warnings.map((d) => d.sequence)).toEqual([warn.sequence]);
    const again = decision({ ...warn, observed: 90, sequence: warn.sequence + 100 });
    await deliver(bw, again);
    await bw.checkpoint({ runId: 'w' });
    expect(warnings).toHaveLength(2);
  });

  it("combines the run's and the tenant's decisions by severity: HALT > DEGRADE > THROTTLE > WARN > ALLOW", async () => {
    const bw = await attach();
    const t = bw.tenantId;
    await deliver(bw, decision({ tenantId: t, runId: 'r', action: 'WARN', metric: 'stepCount' }));
    await deliver(bw, decision({ tenantId: t, action: 'DEGRADE', fallbackModel: 'small', degraded: true, tier: 1 }));
    expect(await bw.checkpoint({ runId: 'r', model: 'big' })).toMatchObject({ action: 'DEGRADE', model: 'small' });
    await deliver(bw, decision({ tenantId: t, runId: 'r', action: 'THROTTLE', retryAfterMs: 1 }));
    expect((await bw.checkpoint({ runId: 'r', model: 'big' })).action).toBe('DEGRADE');
    await deliver(bw, decision({ tenantId: t, runId: 'r', action: 'HALT', state: 'OPEN', metric: 'costUsd' }));
    await expect(bw.checkpoint({ runId: 'r' })).rejects.toMatchObject({ metric: 'costUsd' });
    // The tenant-wide THROTTLE under a run's WARN: the THROTTLE governs.
    await deliver(bw, decision({ tenantId: t, action: 'THROTTLE', retryAfterMs: 1 }));
    await deliver(bw, decision({ tenantId: t, runId: 'r', action: 'WARN' }));
    expect((await bw.checkpoint({ runId: 'r' })).action).toBe('THROTTLE');
    expect(bw.currentDecision('r').action).toBe('THROTTLE');
  });

  it('ignores a decision older than the one it holds (same connection)', async () => {
    const bw = await attach();
    const newer = decision({ tenantId: bw.tenantId, runId: 'r', action: 'HALT', state: 'OPEN' });
    await deliver(bw, newer);
    await deliver(bw, { ...decision({ tenantId: bw.tenantId, runId: 'r' }), sequence: newer.sequence - 1 });
    expect(bw.currentDecision('r').action).toBe('HALT');
  });

  it('costs no network round trip: no fetch, no HTTP request, microseconds each', async () => {
    const bw = await attach();
    await deliver(bw, decision({ tenantId: bw.tenantId, runId: 'w', action: 'WARN' }));
    let fetches = 0;
    let requests = 0;
    const original = globalThis.fetch;
    const onRequest = () => requests++;
    globalThis.fetch = ((...args: Parameters<typeof fetch>) => {
      fetches++;
      return original(...args);
    }) as typeof fetch;
    diagnosticsChannel.subscribe('undici:request:create', onRequest);
    diagnosticsChannel.subscribe('http.client.request.start', onRequest);
    const requestsBefore = server.requests;
    try {
      const started = performance.now();
      await bw.run('w', async () => {
        for (let i = 0; i < 10_000; i++) await bw.checkpoint();
      });
      await bw.run('a', async () => {
        for (let i = 0; i < 10_000; i++) await bw.checkpoint();
      });
      const perCallUs = ((performance.now() - started) * 1000) / 20_000;
      expect(perCallUs).toBeLessThan(50);
    } finally {
      globalThis.fetch = original;
      diagnosticsChannel.unsubscribe('undici:request:create', onRequest);
      diagnosticsChannel.unsubscribe('http.client.request.start', onRequest);
    }
    expect({ fetches, requests, subscriptionRequests: server.requests - requestsBefore }).toEqual({ fetches: 0, requests: 0, subscriptionRequests: 0 });
  });

  it('sends the API token and subscribes once per tenant', async () => {
    const before = server.requests;
    const bw = await attach({ apiToken: 'tenant-token-123' });
    await bw.run('a', () => bw.checkpoint());
    await bw.run('b', () => bw.checkpoint());
    expect(server.requests - before).toBe(1);
    const stream = [...server.streams].find((s) => s.tenantId === bw.tenantId);
    expect(stream?.authorization).toBe('Bearer tenant-token-123');
  });
});

describe('connection loss', () => {
  it('reconnects with backoff; runs the new snapshot does not list are allowed again', async () => {
    const bw = await attach();
    await deliver(bw, decision({ tenantId: bw.tenantId, runId: 'lifted', action: 'HALT', state: 'OPEN' }));
    server.snapshot.set(bw.tenantId, [decision({ tenantId: bw.tenantId, runId: 'kept', action: 'HALT', state: 'OPEN' })]);
    const requests = server.requests;
    server.dropConnections();
    await waitUntil(() => bw.status().state === 'connecting', 2_000, 'disconnect noticed');
    // Until the new snapshot is in, the last known decisions stand.
    await expect(bw.checkpoint({ runId: 'lifted' })).rejects.toBeInstanceOf(BreakwaterHaltError);
    await waitUntil(() => bw.status().connected, 5_000, 'reconnect');
    expect(server.requests).toBeGreaterThan(requests);
    expect(bw.status().reconnects).toBeGreaterThanOrEqual(1);
    await expect(bw.checkpoint({ runId: 'kept' })).rejects.toBeInstanceOf(BreakwaterHaltError);
    await waitUntil(() => bw.currentDecision('lifted').action === 'ALLOW', 3_000, 'stale run decision pruned');
    await expect(bw.checkpoint({ runId: 'kept' })).rejects.toBeInstanceOf(BreakwaterHaltError);
    server.snapshot.delete(bw.tenantId);
  });

  it('keeps retrying a refusing server, then recovers', async () => {
    server.refuseWith = 401;
    try {
      const bw = await attach({ connectTimeoutMs: 200 });
      expect(bw.status().connected).toBe(false);
      await waitUntil(() => bw.status().reconnects >= 3, 5_000, 'retries');
      expect(bw.status().lastError).toMatch(/401/);
      expect(bw.logger.lines.filter((l) => l.message.includes('subscription down'))).toHaveLength(1);
      server.refuseWith = undefined;
      await waitUntil(() => bw.status().connected, 5_000, 'recovery');
      expect(bw.logger.lines.some((l) => l.message === 'decision subscription restored')).toBe(true);
    } finally {
      server.refuseWith = undefined;
    }
  });

  it('backoff grows exponentially to its cap, with jitter', () => {
    const client = new DecisionClient({
      endpoints: ['http://127.0.0.1:1/graphql/stream'],
      tenantId: 'x',
      backoff: { initialMs: 100, maxMs: 1_000 },
      logger: memoryLogger(),
      onDecision: () => {},
      onConnected: () => {},
      onDisconnected: () => {},
    });
    const delays = (n: number) => Array.from({ length: 200 }, () => client.backoffDelay(n));
    for (const [n, ceiling] of [[0, 100], [1, 200], [2, 400], [3, 800], [4, 1_000], [20, 1_000]] as const) {
      const d = delays(n);
      expect(Math.min(...d)).toBeGreaterThanOrEqual(ceiling / 2);
      expect(Math.max(...d)).toBeLessThanOrEqual(ceiling);
      expect(new Set(d).size).toBeGreaterThan(10);
    }
    client.close();
  });
});

describe('when Breakwater is unreachable', () => {
  let down: FakeDecisionServer;

  beforeAll(async () => {
    down = await FakeDecisionServer.start();
  });

  afterAll(async () => {
    await down.close().catch(() => {});
  });

  it('fail open: allows once past the grace period, says so once, and status() reports stale', async () => {
    const local = await FakeDecisionServer.start();
    const port = local.port;
    const logger = memoryLogger();
    const bw = await Breakwater.attach({ tenantId: 'open', graphqlUrl: local.url, register: false, logger, graceMs: 150, backoff: { initialMs: 20, maxMs: 50 } });
    instances.push(bw);
    await deliver(bw, decision({ tenantId: 'open', action: 'DEGRADE', fallbackModel: 'small', degraded: true }), local);
    await deliver(bw, decision({ tenantId: 'open', runId: 'cooling', action: 'HALT', state: 'OPEN', retryAfterMs: 100 }), local);
    await local.close();
    await waitUntil(() => bw.status().state === 'stale', 3_000, 'stale');
    const status = bw.status();
    expect(status).toMatchObject({ state: 'stale', connected: false, stale: true, failMode: 'open' });
    expect(Date.now() - status.since.getTime()).toBeGreaterThanOrEqual(150);
    for (let i = 0; i < 3; i++) {
      // The last known DEGRADE still applies; the run HALT whose retry-after ran out has lapsed.
      expect(await bw.run('cooling', () => bw.checkpoint({ model: 'big' }))).toMatchObject({ action: 'DEGRADE', model: 'small', stale: true });
    }
    expect(logger.lines.filter((l) => l.message.includes('stale'))).toHaveLength(1);

    // Back on the same port: current again.
    const again = await FakeDecisionServer.start(port);
    try {
      await waitUntil(() => bw.status().connected, 5_000, 'reconnect');
      expect((await bw.checkpoint({ model: 'big' })).stale).toBe(false);
      expect(logger.lines.some((l) => l.message === 'decisions are current again')).toBe(true);
    } finally {
      await bw.shutdown();
      await again.close();
    }
  });

  it('fail closed: halts every checkpoint with BreakwaterUnavailableError after the grace period', async () => {
    const local = await FakeDecisionServer.start();
    const halts: Decision[] = [];
    const bw = await Breakwater.attach({
      tenantId: 'strict',
      graphqlUrl: local.url,
      register: false,
      logger: memoryLogger(),
      failMode: 'closed',
      graceMs: 150,
      backoff: { initialMs: 20, maxMs: 50 },
      onHalt: (d) => void halts.push(d),
    });
    instances.push(bw);
    await local.close();
    await waitUntil(() => !bw.status().connected, 2_000, 'disconnect');
    // Within the grace period: carry on.
    expect((await bw.checkpoint()).action).toBe('ALLOW');
    await waitUntil(() => bw.status().stale, 3_000, 'stale');
    const error = await bw.run('r', () => bw.checkpoint()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BreakwaterUnavailableError);
    expect(error).toBeInstanceOf(BreakwaterHaltError);
    expect(error).toMatchObject({ name: 'BreakwaterUnavailableError', runId: 'r', metric: 'breakwater.unreachable', threshold: 150 });
    expect((error as BreakwaterUnavailableError).downForMs).toBeGreaterThanOrEqual(150);
    expect(halts).toHaveLength(1);
    expect(halts[0]).toMatchObject({ action: 'HALT', tenantId: 'strict', runId: 'r' });
  });

  it('never reachable: start() gives up waiting after connectTimeoutMs and the instance follows failMode', async () => {
    const port = down.port;
    await down.close();
    const logger = memoryLogger();
    const started = Date.now();
    const bw = await Breakwater.attach({ tenantId: 'nowhere', graphqlUrl: `http://127.0.0.1:${port}/graphql`, register: false, logger, connectTimeoutMs: 200, graceMs: 300, failMode: 'closed' });
    instances.push(bw);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(bw.status().state).toBe('connecting');
    expect(bw.status().lastError).toMatch(/fetch failed|ECONNREFUSED/);
    expect(logger.lines.some((l) => l.level === 'warn' && l.message.startsWith('not connected to Breakwater yet'))).toBe(true);
    await waitUntil(() => bw.status().stale, 3_000, 'stale');
    await expect(bw.checkpoint()).rejects.toBeInstanceOf(BreakwaterUnavailableError);
    await waitUntil(() => logger.lines.some((l) => l.message.includes('failing closed')), 2_000, 'stale log');
  });

  it('after shutdown the status is closed', async () => {
    const bw = await attach();
    await bw.shutdown();
    expect(bw.status().state).toBe('closed');
  });
});
