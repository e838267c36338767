// How spans leave the SDK: a run's spans go out the moment they end, even while earlier exports
// wait for their answer, with a bounded number of exports at once and the rest batched; flush and
// shutdown wait for all of it; a failing or unreachable endpoint costs nothing at checkpoint() and
// loses nothing silently. Real OTLP bytes from the official exporter, decoded by a local receiver.

import { createServer } from 'node:net';
import { context } from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Breakwater, BreakwaterHaltError, StepExportProcessor, type StartOptions } from '../../src/sdk/index.js';
import { decision, FakeDecisionServer } from './fake-decisions.js';
import { attribute, OtlpSink } from './otlp-sink.js';
import { memoryLogger, waitUntil } from './test-support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOLD_MS = 300;

let decisions: FakeDecisionServer;
let sink: OtlpSink;
const instances: Breakwater[] = [];
let tenantCounter = 0;

beforeAll(async () => {
  decisions = await FakeDecisionServer.start();
  sink = await OtlpSink.start();
});

beforeEach(() => sink.reset({ holdMs: HOLD_MS }));

afterEach(async () => {
  sink.onRequest = () => {};
  await Promise.all(instances.splice(0).map((bw) => bw.shutdown()));
});

afterAll(async () => {
  await sink.close();
  await decisions.close();
});

async function start(options: Partial<StartOptions> = {}): Promise<Breakwater & { logger: ReturnType<typeof memoryLogger> }> {
  const logger = memoryLogger();
  const bw = await Breakwater.start({
    tenantId: `step-${++tenantCounter}`,
    otlpUrl: sink.url,
    graphqlUrl: decisions.url,
    global: false,
    logger,
    backoff: { initialMs: 20, maxMs: 100 },
    ...options,
  });
  instances.push(bw);
  return Object.assign(bw, { logger });
}

const usage = { inputTokens: 10, outputTokens: 5 };

describe('a run span leaves the moment it ends', () => {
  it('is sent while an earlier export is still unanswered, and arrives before that answer', async () => {
    const bw = await start();
    await bw.run('r1', async () => {
      await bw.modelCall({ provider: 'openai', model: 'step-1' }, () => usage);
      await waitUntil(() => sink.requests.length === 1, 2_000, 'the first export');
      const ended = performance.now();
      await bw.toolCall('step-2', () => undefined);
      await waitUntil(() => sink.requests.length === 2, 2_000, 'the second export');
      const [first, second] = sink.requests;
      // Received before the first export was answered, well within the first answer's hold.
      expect(first!.answeredAt).toBeUndefined();
      expect(second!.arrivedAt - ended).toBeLessThan(HOLD_MS / 2);
      expect(second!.spans.map((s) => s.name)).toEqual(['execute_tool step-2']);
      expect(second!.openOnArrival).toBe(2);
    });
  });

  it("puts the decision about step N in the cache before step N+1's checkpoint()", async () => {
    const bw = await start({ onHalt: () => {} });
    await decisions.waitForStreams(1);
    // Breakwater decides as soon as the crossing span arrives, but answers its export only later.
    sink.onRequest = (request) => {
      const crossing = request.spans.find((s) => s.name === 'execute_tool crossing');
      if (crossing) decisions.push(decision({ tenantId: bw.tenantId, runId: String(attribute(crossing, 'agent.run.id')), action: 'HALT', state: 'OPEN', reason: 'crossed' }));
    };
    let steps = 0;
    const run = bw.run('runaway', async () => {
      for (const name of ['warmup', 'crossing', 'after-1', 'after-2']) {
        await bw.checkpoint();
        steps++;
        await bw.toolCall(name, () => sleep(20));
        await sleep(60);
      }
    });
    await expect(run).rejects.toBeInstanceOf(BreakwaterHaltError);
    // The export of 'warmup' is still held when 'crossing' ends; the HALT stops the very next step.
    expect(steps).toBe(2);
    expect(sink.requests[0]!.spans.map((s) => s.name)).toEqual(['execute_tool warmup']);
  });

  it('spans outside any run wait at most scheduledDelayMillis, and leave with the next run span', async () => {
    const bw = await start({ scheduledDelayMillis: 150 });
    sink.reset({ holdMs: 0 });
    const ended = performance.now();
    bw.tracer.startSpan('outside a run').end();
    await waitUntil(() => sink.requests.length === 1, 2_000, 'the delayed export');
    const waited = sink.requests[0]!.arrivedAt - ended;
    expect(waited).toBeGreaterThanOrEqual(140);
    expect(waited).toBeLessThan(1_000);

    bw.tracer.startSpan('outside again').end();
    await bw.run('r2', () => bw.toolCall('inside', () => undefined));
    await waitUntil(() => sink.spans.length >= 4, 2_000, 'the run spans');
    expect(sink.requests[1]!.spans.map((s) => s.name)).toEqual(['outside again', 'execute_tool inside']);
    expect(performance.now() - ended).toBeLessThan(waited + 140);
  });
});

describe('bounded concurrency, batching what piles up', () => {
  it('never has more exports open than maxConcurrentExports, batches the rest, and loses nothing', async () => {
    const bw = await start({ maxConcurrentExports: 2 });
    const calls = 30;
    await bw.run('burst', async () => {
      for (let i = 0; i < calls; i++) {
        await bw.toolCall(`t${i}`, () => undefined);
        await sleep(5);
      }
    });
    await bw.flush();
    const spans = sink.spans;
    expect(spans).toHaveLength(calls + 1);
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(calls + 1);
    expect(sink.maxOpen).toBe(2);
    expect(Math.max(...sink.requests.map((r) => r.openOnArrival))).toBe(2);
    // about 160 ms of spans against 300 ms answers: a handful of requests, not one per span
    expect(sink.requests.length).toBeLessThan(10);
    expect(bw.status().exports).toMatchObject({ exported: calls + 1, failed: 0, dropped: 0, queued: 0, inFlight: 0, requests: sink.requests.length });
  });

  it('forceFlush waits for every export in flight and every queued span', async () => {
    const bw = await start({ maxConcurrentExports: 1 });
    await bw.run('flush', async () => {
      for (let i = 0; i < 5; i++) await bw.toolCall(`f${i}`, () => undefined);
    });
    const started = performance.now();
    await bw.flush();
    const waited = performance.now() - started;
    expect(sink.spans).toHaveLength(6);
    expect(sink.requests.every((r) => r.answeredAt !== undefined)).toBe(true);
    expect(sink.open).toBe(0);
    // one held export, then the batch of what piled up behind it
    expect(sink.requests).toHaveLength(2);
    expect(waited).toBeGreaterThanOrEqual(HOLD_MS);
    expect(bw.status().exports).toMatchObject({ exported: 6, queued: 0, inFlight: 0 });
  });
});

describe('when exports fail', () => {
  it('a failing endpoint: checkpoint() does not throw, every lost span is counted and logged, shutdown resolves', async () => {
    sink.reset({ holdMs: 0, status: 500 });
    const bw = await start();
    await bw.run('failing', async () => {
      for (let i = 0; i < 3; i++) {
        await expect(bw.checkpoint()).resolves.toMatchObject({ action: 'ALLOW' });
        await bw.toolCall(`x${i}`, () => undefined);
      }
    });
    await bw.flush();
    expect(sink.spans).toHaveLength(4);
    expect(bw.status().exports).toMatchObject({ exported: 0, failed: 4, dropped: 0 });
    expect(bw.logger.lines.filter((l) => l.message.startsWith('spans could not be sent'))).toHaveLength(1);

    sink.reset({ holdMs: 0 });
    await bw.run('recovered', () => bw.toolCall('ok', () => undefined));
    await bw.flush();
    expect(bw.logger.lines).toContainEqual({ level: 'info', message: 'spans reach Breakwater again', fields: { failed: 4, dropped: 0 } });
    await expect(bw.shutdown()).resolves.toBeUndefined();
    expect(bw.logger.lines).toContainEqual({ level: 'warn', message: 'spans lost toward Breakwater since start', fields: { exported: 2, failed: 4, dropped: 0 } });
  });

  it('an unreachable endpoint in failMode open: checkpoint() answers from the cache at once, flush and shutdown resolve', async () => {
    const port = await closedPort();
    const bw = await start({ otlpUrl: `http://127.0.0.1:${port}`, failMode: 'open' });
    await bw.run('unreachable', async () => {
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await expect(bw.checkpoint()).resolves.toMatchObject({ action: 'ALLOW' });
        expect(performance.now() - t).toBeLessThan(20);
        await bw.toolCall(`u${i}`, () => undefined);
      }
    });
    await expect(bw.flush()).resolves.toBeUndefined();
    expect(bw.status().exports).toMatchObject({ exported: 0, failed: 4, queued: 0, inFlight: 0 });
    expect(bw.logger.lines.some((l) => l.level === 'warn' && l.message.startsWith('spans could not be sent'))).toBe(true);
    await expect(bw.shutdown()).resolves.toBeUndefined();
  });
});

describe('the processor on its own, with the official exporter', () => {
  it('drops the oldest spans when its queue is full, counts and logs them, and exports without tracing itself', async () => {
    const logger = memoryLogger();
    const suppressed: boolean[] = [];
    const otlp = new OTLPTraceExporter({ url: `${sink.url}/v1/traces` });
    const exporter: SpanExporter = {
      export: (spans: ReadableSpan[], done) => {
        suppressed.push(isTracingSuppressed(context.active()));
        otlp.export(spans, done);
      },
      shutdown: () => otlp.shutdown(),
    };
    const processor = new StepExportProcessor({ exporter, logger, maxConcurrentExports: 1, maxQueueSize: 4 });
    const provider = new BasicTracerProvider({ spanProcessors: [processor] });
    const tracer = provider.getTracer('test');
    const end = (name: string) => tracer.startSpan(name, { attributes: { 'agent.run.id': 'q' } }).end();
    end('s0');
    await waitUntil(() => sink.requests.length === 1, 2_000, 'the first export');
    for (let i = 1; i <= 8; i++) end(`s${i}`);
    expect(processor.stats()).toMatchObject({ dropped: 4, queued: 4, inFlight: 1 });
    await processor.forceFlush();
    expect(sink.requests.map((r) => r.spans.map((s) => s.name))).toEqual([['s0'], ['s5', 's6', 's7', 's8']]);
    expect(processor.stats()).toMatchObject({ exported: 5, failed: 0, dropped: 4, queued: 0, inFlight: 0, requests: 2 });
    expect(logger.lines.filter((l) => l.message.startsWith('span export queue full'))).toHaveLength(1);
    expect(logger.lines).toContainEqual({ level: 'info', message: 'spans reach Breakwater again', fields: { failed: 0, dropped: 4 } });
    expect(suppressed).toEqual([true, true]);
    await provider.shutdown();
    end('after shutdown');
    expect(processor.stats().queued).toBe(0);
  });
});

/** A local port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
