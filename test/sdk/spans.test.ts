// The span helpers and run scopes, read back from an application's own in-memory provider that
// Breakwater attached to: GenAI semantic-convention names, error recording, run identity stamped
// on spans of any tracer, across async boundaries.

import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Breakwater, BreakwaterHaltError } from '../../src/sdk/index.js';
import { silentLogger } from '../../src/sdk/logger.js';
import { decision, FakeDecisionServer } from './fake-decisions.js';

let server: FakeDecisionServer;
let memory: InMemorySpanExporter;
let provider: BasicTracerProvider;
let bw: Breakwater;

beforeAll(async () => {
  server = await FakeDecisionServer.start();
  memory = new InMemorySpanExporter();
  // The application's own setup, built before Breakwater (2.x providers take processors at construction).
  provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'app' }), spanProcessors: [new SimpleSpanProcessor(memory)] });
  bw = await Breakwater.attach({ tenantId: 'acme', graphqlUrl: server.url, tracerProvider: provider, logger: silentLogger, agentName: 'support-bot' });
});

afterAll(async () => {
  await bw.shutdown();
  await provider.shutdown();
  await server.close();
});

beforeEach(() => memory.reset());

function spans(): ReadableSpan[] {
  return memory.getFinishedSpans();
}

function byName(name: string): ReadableSpan {
  const span = spans().find((s) => s.name === name);
  if (!span) throw new Error(`no span ${name}; have ${spans().map((s) => s.name).join(', ')}`);
  return span;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('span helpers follow the GenAI semantic conventions', () => {
  it('modelCall: chat {model}, request attributes, usage and response model; returns what fn returned', async () => {
    const result = await bw.modelCall({ provider: 'openai', model: 'gpt-4o', temperature: 0.2, maxTokens: 256, conversationId: 'c-1' }, async () => ({
      inputTokens: 120,
      outputTokens: 30,
      responseModel: 'gpt-4o-2024-08-06',
      finishReasons: ['stop'],
      text: 'hello',
      headers: new Headers({ 'x-ratelimit-remaining-tokens': '9000', 'x-ratelimit-remaining-requests': '42' }),
    }));
    expect(result.text).toBe('hello');
    const span = byName('chat gpt-4o');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.request.temperature': 0.2,
      'gen_ai.request.max_tokens': 256,
      'gen_ai.conversation.id': 'c-1',
      'gen_ai.usage.input_tokens': 120,
      'gen_ai.usage.output_tokens': 30,
      'gen_ai.response.model': 'gpt-4o-2024-08-06',
      'gen_ai.response.finish_reasons': ['stop'],
      'http.response.header.x-ratelimit-remaining-tokens': ['9000'],
      'http.response.header.x-ratelimit-remaining-requests': ['42'],
    });
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
  });

  it('modelCall on error: error.type, status ERROR, http.response.status_code, retry-after, exception event; rethrows', async () => {
    class RateLimitError extends Error {
      override name = 'RateLimitError';
      status = 429;
      headers = { 'retry-after': '7' };
    }
    await expect(bw.modelCall({ provider: 'openai', model: 'gpt-4o-mini', operation: 'generate_content' }, async () => {
      throw new RateLimitError('Rate limit reached for requests');
    })).rejects.toBeInstanceOf(RateLimitError);
    const span = byName('generate_content gpt-4o-mini');
    expect(span.attributes).toMatchObject({ 'error.type': 'RateLimitError', 'http.response.status_code': 429, 'http.response.header.retry-after': ['7'] });
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'Rate limit reached for requests' });
    expect(span.events.map((e) => e.name)).toEqual(['exception']);

    // A plain Error with only a status: the status is the error type.
    await expect(bw.modelCall({ provider: 'anthropic', model: 'claude' }, async () => {
      throw Object.assign(new Error('overloaded'), { response: { status: 529 } });
    })).rejects.toThrow('overloaded');
    expect(byName('chat claude').attributes).toMatchObject({ 'error.type': '529', 'http.response.status_code': 529 });
  });

  it('toolCall: execute_tool {name}, gen_ai.tool.*, errors recorded', async () => {
    expect(await bw.toolCall('search', async () => 'found', { callId: 'call_1' })).toBe('found');
    expect(byName('execute_tool search').attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'search',
      'gen_ai.tool.call.id': 'call_1',
      'gen_ai.tool.type': 'function',
    });
    await expect(bw.toolCall('fetch', () => {
      throw Object.assign(new Error('ETIMEDOUT'), { code: 'ETIMEDOUT' });
    })).rejects.toThrow('ETIMEDOUT');
    const failed = byName('execute_tool fetch');
    expect(failed.attributes['error.type']).toBe('ETIMEDOUT');
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe('run scopes', () => {
  it("stamp tenant, root run and depth on every span inside, from any tracer, across Promise.all, timers and sub-agents", async () => {
    const other = provider.getTracer('some-instrumentation');
    await bw.run({ runId: 'run-1', conversationId: 'conv-9' }, async (run) => {
      expect(run).toMatchObject({ tenantId: 'acme', runId: 'run-1', depth: 0, agentName: 'support-bot' });
      expect(bw.currentRun()).toEqual({ runId: 'run-1', depth: 0, agentName: 'support-bot' });
      await Promise.all([
        bw.toolCall('a', () => sleep(5)),
        new Promise<void>((resolve) =>
          setTimeout(() => {
            other.startSpan('timer').end();
            resolve();
          }, 5),
        ),
        bw.subAgent('researcher', async (sub) => {
          expect(sub).toMatchObject({ runId: 'run-1', depth: 1, agentName: 'researcher' });
          await sleep(1);
          await Promise.all([
            bw.modelCall({ provider: 'openai', model: 'm' }, async () => ({ inputTokens: 1, outputTokens: 1 })),
            bw.subAgent('critic', async () => {
              await new Promise<void>((resolve) => setImmediate(resolve));
              await new Promise<void>((resolve) => setTimeout(() => void bw.toolCall('deep', () => sleep(1)).then(() => resolve()), 3));
              queueMicrotask(() => other.startSpan('microtask').end());
            }),
          ]);
        }),
      ]);
      other.startSpan('after').end();
    });
    other.startSpan('outside').end();

    const stamped = Object.fromEntries(
      spans().map((s) => [s.name, [s.attributes['tenant.id'], s.attributes['agent.run.id'], s.attributes['agent.depth']]]),
    );
    expect(stamped).toEqual({
      'invoke_agent support-bot': ['acme', 'run-1', 0],
      'execute_tool a': ['acme', 'run-1', 0],
      timer: ['acme', 'run-1', 0],
      'invoke_agent researcher': ['acme', 'run-1', 1],
      'chat m': ['acme', 'run-1', 1],
      'invoke_agent critic': ['acme', 'run-1', 2],
      'execute_tool deep': ['acme', 'run-1', 2],
      microtask: ['acme', 'run-1', 2],
      after: ['acme', 'run-1', 0],
      outside: [undefined, undefined, undefined],
    });
    const root = byName('invoke_agent support-bot');
    expect(root.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'support-bot', 'gen_ai.conversation.id': 'conv-9' });
    expect(byName('invoke_agent critic').attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'critic' });
    // One trace per run, sub-agents nested under their parent agent.
    expect(new Set(spans().filter((s) => s.name !== 'outside').map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(byName('invoke_agent critic').parentSpanContext?.spanId).toBe(byName('invoke_agent researcher').spanContext().spanId);
  });

  it('concurrent runs keep their own identity', async () => {
    await Promise.all(
      ['x', 'y', 'z'].map((id) =>
        bw.run(id, async () => {
          for (let i = 0; i < 3; i++) {
            await sleep(Math.random() * 5);
            await bw.toolCall(`t-${id}`, () => sleep(1));
          }
        }),
      ),
    );
    for (const s of spans().filter((s) => s.name.startsWith('execute_tool'))) {
      expect(`execute_tool t-${String(s.attributes['agent.run.id'])}`).toBe(s.name);
    }
  });

  it('subAgent outside a run is refused; the run span records a halt', async () => {
    await expect(bw.subAgent('lost', async () => {})).rejects.toThrow(/inside bw.run/);
    server.push(decision({ tenantId: 'acme', runId: 'halted', action: 'HALT', state: 'OPEN', reason: 'enough' }));
    await new Promise<void>((resolve) => {
      const poll = () => (bw.currentDecision('halted').action === 'HALT' ? resolve() : setTimeout(poll, 5));
      poll();
    });
    await expect(bw.run('halted', () => bw.checkpoint())).rejects.toBeInstanceOf(BreakwaterHaltError);
    expect(byName('invoke_agent support-bot').attributes['error.type']).toBe('BreakwaterHaltError');
  });

  it('spans of another instance on the same provider keep that instance\'s identity', async () => {
    const second = await Breakwater.attach({ tenantId: 'globex', graphqlUrl: server.url, tracerProvider: provider, logger: silentLogger });
    try {
      await Promise.all([bw.run('a-run', () => bw.toolCall('one', () => sleep(2))), second.run('g-run', () => second.toolCall('two', () => sleep(2)))]);
      expect(byName('execute_tool one').attributes).toMatchObject({ 'tenant.id': 'acme', 'agent.run.id': 'a-run' });
      expect(byName('execute_tool two').attributes).toMatchObject({ 'tenant.id': 'globex', 'agent.run.id': 'g-run' });
    } finally {
      await second.shutdown();
    }
    // Global tracer API unaffected by attach with an explicit provider.
    expect(trace.getTracer('x')).toBeDefined();
  });
});
