// An agent loop on the real `openai` client, instrumented by one real GenAI instrumentation and
// exported by the OpenTelemetry SDK as a new user would set it up: everything from OTEL_* variables
// (endpoint, OTEL_RESOURCE_ATTRIBUTES with tenant.id, batch delay). CommonJS, because the
// instrumentations patch `openai` through require hooks registered before it is loaded.
//
// Environment: SETUP (otel | openinference | traceloop), OPENAI_BASE_URL, CONVERSATION_ID,
// TURNS (agent turns; each turn asks for TOOLS tool calls), RATE_LIMITED (429 calls to make),
// RUNAWAY_CONVERSATION_ID and RUNAWAY_TOOLS (then one more turn, in that conversation, asking for that many).
// Every model call is a root span (no parent): the loop shares only its conversation id.

/* eslint-disable @typescript-eslint/no-require-imports */
import type { Context, Span } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';

const { context } = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto');

const setup = process.env.SETUP ?? 'otel';
let conversationId = process.env.CONVERSATION_ID ?? '';
const turns = Number(process.env.TURNS ?? 1);
const tools = Number(process.env.TOOLS ?? 0);
const rateLimited = Number(process.env.RATE_LIMITED ?? 0);

/**
 * The official and OpenLLMetry instrumentations have no way to put a conversation id on a chat
 * completion span: a span processor stamps the attribute their own SDKs would (OpenLLMetry's
 * node-server-sdk writes association properties this way).
 */
function conversationStamp(key: string): SpanProcessor {
  return {
    onStart: (span: Span) => void span.setAttribute(key, conversationId),
    onEnd: () => undefined,
    forceFlush: async () => undefined,
    shutdown: async () => undefined,
  } as unknown as SpanProcessor;
}

function instrumentation(): { instrumentation: unknown; processors: SpanProcessor[]; withConversation: (ctx: Context) => Context } {
  switch (setup) {
    case 'otel': {
      const { OpenAIInstrumentation } = require('@opentelemetry/instrumentation-openai') as typeof import('@opentelemetry/instrumentation-openai');
      return { instrumentation: new OpenAIInstrumentation(), processors: [conversationStamp('gen_ai.conversation.id')], withConversation: (ctx) => ctx };
    }
    case 'openinference': {
      const { OpenAIInstrumentation } = require('@arizeai/openinference-instrumentation-openai') as typeof import('@arizeai/openinference-instrumentation-openai');
      const { setSession } = require('@arizeai/openinference-core') as typeof import('@arizeai/openinference-core');
      return { instrumentation: new OpenAIInstrumentation(), processors: [], withConversation: (ctx) => setSession(ctx, { sessionId: conversationId }) };
    }
    case 'traceloop': {
      const { OpenAIInstrumentation } = require('@traceloop/instrumentation-openai') as typeof import('@traceloop/instrumentation-openai');
      return { instrumentation: new OpenAIInstrumentation(), processors: [conversationStamp('traceloop.association.properties.session_id')], withConversation: (ctx) => ctx };
    }
    default:
      throw new Error(`unknown SETUP ${setup}`);
  }
}

async function main(): Promise<void> {
  const chosen = instrumentation();
  const sdk = new NodeSDK({
    instrumentations: [chosen.instrumentation as never],
    spanProcessors: [...chosen.processors, new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  sdk.start();
  // Loaded after the SDK started, so the require hook patches it.
  const { default: OpenAI } = require('openai') as typeof import('openai');
  const client = new OpenAI({ apiKey: 'test-key', baseURL: process.env.OPENAI_BASE_URL, maxRetries: 0 });
  const toolSpecs = ['lookup_weather', 'search_docs'].map((name) => ({
    type: 'function' as const,
    function: { name, description: `${name} for the agent`, parameters: { type: 'object', properties: { query: { type: 'string' } } } },
  }));
  const inConversation = <T,>(fn: () => Promise<T>) => context.with(chosen.withConversation(context.active()), fn);
  const agentTurn = async (prompt: string) => {
    const messages: import('openai').OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: prompt }];
    for (;;) {
      const completion = await inConversation(() => client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools: toolSpecs }));
      const message = completion.choices[0]!.message;
      messages.push(message);
      if (!message.tool_calls?.length) break;
      // The tools run without spans of their own, as in most agents instrumented at the client.
      for (const call of message.tool_calls) messages.push({ role: 'tool', tool_call_id: call.id, content: `result of ${call.type === 'function' ? call.function.name : call.type}` });
    }
  };
  for (let turn = 0; turn < turns; turn++) await agentTurn(`turn ${turn}: tools=${tools}`);
  for (let i = 0; i < rateLimited; i++) {
    await inConversation(() => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'rate-limit please' }] })).then(
      () => {
        throw new Error('expected a 429');
      },
      (error: { status?: number }) => {
        if (error.status !== 429) throw error as Error;
      },
    );
  }
  const runaway = process.env.RUNAWAY_CONVERSATION_ID;
  if (runaway) {
    // The conversation stamp and OpenInference's session are read per call, so this switches them.
    conversationId = runaway;
    await agentTurn(`runaway: tools=${process.env.RUNAWAY_TOOLS ?? 40}`);
  }
  await sdk.shutdown();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
