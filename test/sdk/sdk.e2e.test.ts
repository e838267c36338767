// The SDK against a real Breakwater: real OTLP exports, a real decisions subscription, spans read
// back from ClickHouse. Tenants authenticate with their own API token and ingest key.

import { trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { Breakwater, BreakwaterHaltError, type Decision, type StartOptions } from '../../src/sdk/index.js';
import { silentLogger } from '../../src/sdk/logger.js';
import { gql } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';

const TENANTS = ['sdk-a', 'sdk-b', 'sdk-ctx', 'sdk-att'] as const;
const ADMIN = 'admin-token-0123456789abcdef';
const apiToken = (t: string) => `${t}-api-token-0123456789`;
const ingestKey = (t: string) => `${t}-ingest-key-0123456789`;

const POLICY = `
tiers:
  free:
    warnFraction: 0.5
    run: { toolCallsPerMinute: 5, stepCount: 1000, subAgentDepth: 10 }
  pro:
    run: { toolCallsPerMinute: 1000, stepCount: 1000, subAgentDepth: 10 }
tenants:
  sdk-a: { tier: free }
  sdk-b: { tier: pro }
  sdk-ctx: { tier: pro }
  sdk-att: { tier: pro }
auth:
  adminTokens: ['${ADMIN}']
  tenants:
${TENANTS.map((t) => `    ${t}: { apiTokens: ['${apiToken(t)}'], ingestKeys: ['${ingestKey(t)}'] }`).join('\n')}
`;

let service: Service;
const instances: Breakwater[] = [];

beforeAll(async () => {
  service = await startWithPolicy(POLICY);
});

afterAll(async () => {
  // SDK first: the service's stop waits for open subscription streams.
  await Promise.all(instances.map((bw) => bw.shutdown()));
  await service?.stop();
});

async function start(tenantId: string, options: Partial<StartOptions> = {}): Promise<Breakwater> {
  const bw = await Breakwater.start({
    tenantId,
    otlpUrl: service.otlpUrl,
    graphqlUrl: service.graphqlUrl,
    ingestKey: ingestKey(tenantId),
    apiToken: apiToken(tenantId),
    serviceName: `agent-${tenantId}`,
    global: false,
    logger: silentLogger,
    ...options,
  });
  instances.push(bw);
  return bw;
}

async function rows<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
  const result = await service.store.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('decisions reach the agent at its next checkpoint', () => {
  let a: Breakwater;
  let b: Breakwater;
  const bDecisions: Decision[] = [];

  beforeAll(async () => {
    a = await start('sdk-a', { onHalt: async () => {} });
    b = await start('sdk-b');
    b.onDecision((d) => bDecisions.push(d));
  });

  it('a run that crosses its threshold gets HALT at its next checkpoint; onHalt runs first; other runs and tenants go on', async () => {
    const events: string[] = [];
    let halted: Decision | undefined;
    const bw = await start('sdk-a', {
      serviceName: 'agent-sdk-a',
      onHalt: async (decision, error) => {
        events.push(`onHalt ${error.metric}`);
        await sleep(20); // saving state
        halted = decision;
      },
    });
    let haltArrived = false;
    bw.onDecision((d) => {
      if (d.runId === 'loop-1' && d.action === 'HALT') haltArrived = true;
    });
    let passedAfterHalt = 0;
    let toolCalls = 0;

    const runaway = bw.run('loop-1', async () => {
      for (let i = 0; i < 500; i++) {
        const before = haltArrived;
        await bw.checkpoint();
        if (before) passedAfterHalt++;
        await bw.toolCall('search', () => sleep(10));
        toolCalls++;
      }
    });
    // Meanwhile the other tenant's agent works at the same pace, and so does another run of sdk-a.
    const actionsOfB: string[] = [];
    const neighbour = b.run('b-1', async () => {
      for (let i = 0; i < 40; i++) {
        actionsOfB.push((await b.checkpoint()).action);
        await b.toolCall('search', () => sleep(10));
      }
    });
    const sibling = bw.run('sibling', async () => {
      const actions: string[] = [];
      for (let i = 0; i < 3; i++) {
        actions.push((await bw.checkpoint()).action);
        await bw.modelCall({ provider: 'openai', model: 'gpt-4o-mini' }, async () => ({ inputTokens: 10, outputTokens: 2 }));
      }
      return actions;
    });

    const error = await runaway.then(
      () => undefined,
      (e: unknown) => {
        events.push('thrown');
        return e;
      },
    );
    expect(error).toBeInstanceOf(BreakwaterHaltError);
    const halt = error as BreakwaterHaltError;
    expect(halt).toMatchObject({ tenantId: 'sdk-a', runId: 'loop-1', scope: 'RUN', metric: 'toolCallsPerMinute', threshold: 5 });
    expect(halt.observed).toBeGreaterThanOrEqual(5);
    expect(halt.retryAfterMs).toBeGreaterThan(0);
    expect(halt.reason).not.toBe('');
    expect(halt.decision).toMatchObject({ action: 'HALT', state: 'OPEN', runId: 'loop-1' });
    expect(events).toEqual(['onHalt toolCallsPerMinute', 'thrown']);
    expect(halted).toEqual(halt.decision);
    // No checkpoint let the run through once the HALT was in the cache.
    expect(passedAfterHalt).toBe(0);
    expect(toolCalls).toBeLessThan(200);

    expect(await sibling).toEqual(['ALLOW', 'ALLOW', 'ALLOW']);
    await neighbour;
    expect(new Set(actionsOfB)).toEqual(new Set(['ALLOW']));
    expect(bDecisions.every((d) => d.tenantId === 'sdk-b')).toBe(true);
    expect(b.currentDecision('b-1').action).toBe('ALLOW');

    // Later checkpoints of the halted run keep halting, from the cache; the server agrees.
    await expect(bw.checkpoint({ runId: 'loop-1' })).rejects.toBeInstanceOf(BreakwaterHaltError);
    const server = await gql<{ decision: Decision }>(service.graphqlUrl, '{ decision(tenantId: "sdk-a", runId: "loop-1") { action metric } }', {}, ADMIN);
    expect(server.data!.decision).toEqual({ action: 'HALT', metric: 'toolCallsPerMinute' });
    expect((await a.checkpoint({ runId: 'loop-1' }).catch((e: unknown) => e)) instanceof BreakwaterHaltError).toBe(true);
  });

  it('a tenant-wide HALT from an operator reaches every run of that tenant only', async () => {
    const forced = await gql(service.graphqlUrl, 'mutation { forceOpenBreaker(tenantId: "sdk-a", reason: "incident 7", durationMs: 60000) { state } }', {}, ADMIN);
    expect(forced.errors).toBeUndefined();
    const deadline = Date.now() + 5_000;
    while (a.currentDecision().action !== 'HALT' && Date.now() < deadline) await sleep(10);
    await expect(a.run('fresh', () => a.checkpoint())).rejects.toMatchObject({ scope: 'TENANT', reason: expect.stringContaining('incident 7') });
    expect((await b.run('b-2', () => b.checkpoint())).action).toBe('ALLOW');
    await gql(service.graphqlUrl, 'mutation { resetBreaker(tenantId: "sdk-a") { state } }', {}, ADMIN);
    while (a.currentDecision().action !== 'ALLOW' && Date.now() < deadline + 5_000) await sleep(10);
    expect((await a.run('fresh-2', () => a.checkpoint())).action).toBe('ALLOW');
  });

  it("a tenant's token cannot subscribe to another tenant's decisions", async () => {
    const intruder = await start('sdk-b', { apiToken: apiToken('sdk-a'), connectTimeoutMs: 1_000 });
    expect(intruder.status().connected).toBe(false);
    // Refused with the server's GraphQL error, kept in status().lastError; nothing of sdk-a's leaks.
    expect(intruder.status().lastError).toBe('GraphQL error: this token cannot reach that tenant');
    await intruder.shutdown();
  });
});

describe('run context reaches every span, through the real pipeline into ClickHouse', () => {
  it('tenant, root run and depth propagate through Promise.all, timers and nested sub-agents (NodeSDK, global)', async () => {
    const warnings: string[] = [];
    const bw = await start('sdk-ctx', { global: true, logger: { ...silentLogger, warn: (m) => void warnings.push(m) } });
    // NodeSDK registered this instance's provider globally: instrumentations' spans reach it.
    expect(warnings).toEqual([]);
    await expect(start('sdk-ctx', { global: true })).rejects.toThrow(/pass global: false/);
    const lib = trace.getTracer('some-instrumentation');
    await bw.run('ctx-run', async () => {
      await Promise.all([
        bw.toolCall('root-tool', () => sleep(5)),
        new Promise<void>((resolve) =>
          setTimeout(() => {
            lib.startSpan('timer-span').end();
            resolve();
          }, 10),
        ),
        bw.subAgent('researcher', async () => {
          await sleep(2);
          await Promise.all([
            bw.modelCall({ provider: 'openai', model: 'gpt-4o-mini' }, async () => ({ inputTokens: 50, outputTokens: 5 })),
            bw.subAgent('critic', async () => {
              await new Promise<void>((resolve) => setTimeout(() => void bw.toolCall('deep-tool', () => sleep(2)).then(() => resolve()), 5));
              await new Promise<void>((resolve) => setImmediate(() => lib.startActiveSpan('immediate-span', (s) => (s.end(), resolve()))));
            }),
          ]);
        }),
      ]);
    });
    lib.startSpan('outside-span').end();
    await bw.flush();

    const stored = await rows<{ SpanName: string; TenantId: string; RunId: string; Depth: number; Operation: string; ServiceName: string }>(
      'SELECT SpanName, TenantId, RunId, Depth, Operation, ServiceName FROM spans WHERE TenantId = {t:String} ORDER BY SpanName',
      { t: 'sdk-ctx' },
    );
    const inRun = Object.fromEntries(stored.filter((r) => r.RunId === 'ctx-run').map((r) => [r.SpanName, [r.Depth, r.Operation]]));
    expect(inRun).toEqual({
      'invoke_agent agent-sdk-ctx': [0, 'invoke_agent'],
      'execute_tool root-tool': [0, 'execute_tool'],
      'timer-span': [0, ''],
      'invoke_agent researcher': [1, 'invoke_agent'],
      'chat gpt-4o-mini': [1, 'chat'],
      'invoke_agent critic': [2, 'invoke_agent'],
      'execute_tool deep-tool': [2, 'execute_tool'],
      'immediate-span': [2, ''],
    });
    const outside = stored.find((r) => r.SpanName === 'outside-span');
    expect(outside).toMatchObject({ TenantId: 'sdk-ctx', Depth: -1 });
    expect(outside?.RunId).not.toBe('ctx-run');
    expect(new Set(stored.map((r) => r.ServiceName))).toEqual(new Set(['agent-sdk-ctx']));

    // The run's live metrics count the sub-agents toward the root run.
    const run = await gql<{ run: { metrics: { subAgentDepth: number; stepCount: number } } }>(
      service.graphqlUrl,
      '{ run(tenantId: "sdk-ctx", runId: "ctx-run") { metrics { subAgentDepth stepCount } } }',
      {},
      ADMIN,
    );
    expect(run.data!.run.metrics).toEqual({ subAgentDepth: 2, stepCount: 3 });
  });

  it('instances for different tenants coexist in one process, each with its own provider and resource', async () => {
    await Promise.all(instances.map((bw) => bw.flush().catch(() => {})));
    const stored = await rows<{ TenantId: string; RunId: string; ServiceName: string }>(
      "SELECT DISTINCT TenantId, RunId, ServiceName FROM spans WHERE TenantId IN ('sdk-a', 'sdk-b') ORDER BY TenantId, RunId",
      {},
    );
    const runsOf = (tenant: string) => stored.filter((r) => r.TenantId === tenant).map((r) => r.RunId);
    expect(runsOf('sdk-a')).toEqual(expect.arrayContaining(['loop-1', 'sibling', 'fresh', 'fresh-2']));
    expect(runsOf('sdk-b')).toEqual(expect.arrayContaining(['b-1', 'b-2']));
    expect(runsOf('sdk-b').filter((r) => !r.startsWith('b-'))).toEqual([]);
    expect(runsOf('sdk-a').filter((r) => r.startsWith('b-'))).toEqual([]);
    for (const row of stored) expect(row.ServiceName).toBe(`agent-${row.TenantId}`);
  });

  it("attach: the application's provider keeps all its spans; Breakwater receives the run's spans only", async () => {
    const memory = new InMemorySpanExporter();
    const app = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'existing-app' }), spanProcessors: [new SimpleSpanProcessor(memory)] });
    const bw = await Breakwater.attach({
      tenantId: 'sdk-att',
      tracerProvider: app,
      otlpUrl: `${service.otlpUrl}/v1/traces`,
      graphqlUrl: `${service.graphqlUrl}/graphql`,
      ingestKey: ingestKey('sdk-att'),
      apiToken: apiToken('sdk-att'),
      logger: silentLogger,
    });
    instances.push(bw);
    expect(bw.status().connected).toBe(true);
    const tracer = app.getTracer('app');
    tracer.startSpan('app-before').end();
    await bw.run('att-run', async () => {
      tracer.startSpan('app-inside').end();
      await bw.toolCall('lookup', () => sleep(1));
    });
    await bw.flush();
    expect(memory.getFinishedSpans().map((s) => s.name).sort()).toEqual(['app-before', 'app-inside', 'execute_tool lookup', 'invoke_agent agent']);
    const stored = await rows<{ SpanName: string; RunId: string; ServiceName: string }>(
      'SELECT SpanName, RunId, ServiceName FROM spans WHERE TenantId = {t:String} ORDER BY SpanName',
      { t: 'sdk-att' },
    );
    expect(stored).toEqual([
      { SpanName: 'app-inside', RunId: 'att-run', ServiceName: 'existing-app' },
      { SpanName: 'execute_tool lookup', RunId: 'att-run', ServiceName: 'existing-app' },
      { SpanName: 'invoke_agent agent', RunId: 'att-run', ServiceName: 'existing-app' },
    ]);
  });
});
