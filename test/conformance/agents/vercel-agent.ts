// An agent loop on the Vercel AI SDK (`ai` 7 with `@ai-sdk/openai`), traced by its OpenTelemetry
// integration and exported by the OpenTelemetry SDK configured from OTEL_* variables only.
//
// Environment: SETUP (vercel-legacy: LegacyOpenTelemetry, the ai.* spans of AI SDK 4-6;
// vercel-genai: OpenTelemetry, the GenAI semantic conventions), OPENAI_BASE_URL, CONVERSATION_ID,
// TURNS (generateText calls; each asks for TOOLS tool calls), RATE_LIMITED (429 calls to make),
// RUNAWAY_CONVERSATION_ID and RUNAWAY_TOOLS (then one more generateText asking for that many).
// Each generateText is a root span: the loop shares only its conversation id, which AI SDK 7
// records from the runtime context it is told to include.

import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { LegacyOpenTelemetry, OpenTelemetry } from '@ai-sdk/otel';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, isStepCount, registerTelemetry, tool } from 'ai';
import { z } from 'zod';

const setup = process.env.SETUP ?? 'vercel-legacy';
const conversationId = process.env.CONVERSATION_ID ?? '';
const turns = Number(process.env.TURNS ?? 1);
const tools = Number(process.env.TOOLS ?? 0);
const rateLimited = Number(process.env.RATE_LIMITED ?? 0);

const sdk = new NodeSDK({ spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
sdk.start();
// The GenAI integration records no runtime context by itself: enrichSpan is its hook for custom attributes.
const enrichSpan = ({ runtimeContext }: { runtimeContext?: unknown }) => ({ 'gen_ai.conversation.id': String((runtimeContext as { sessionId?: string } | undefined)?.sessionId ?? '') });
registerTelemetry(setup === 'vercel-genai' ? new OpenTelemetry({ enrichSpan }) : new LegacyOpenTelemetry());

const openai = createOpenAI({ apiKey: 'test-key', baseURL: process.env.OPENAI_BASE_URL });
const model = openai.chat('gpt-4o-mini');
const agentTools = {
  lookup_weather: tool({ description: 'weather', inputSchema: z.object({ query: z.string() }), execute: async ({ query }) => `sunny at ${query}` }),
  search_docs: tool({ description: 'docs', inputSchema: z.object({ query: z.string() }), execute: async ({ query }) => `docs on ${query}` }),
};
const telemetry = { isEnabled: true, includeRuntimeContext: { sessionId: true } };
const inConversation = (sessionId: string) => ({ runtimeContext: { sessionId }, experimental_telemetry: telemetry });

async function agentTurn(sessionId: string, prompt: string, toolCalls: number): Promise<void> {
  await generateText({ model, tools: agentTools, prompt, stopWhen: isStepCount(toolCalls + 1), maxRetries: 0, ...inConversation(sessionId) });
}

for (let turn = 0; turn < turns; turn++) await agentTurn(conversationId, `turn ${turn}: tools=${tools}`, tools);
for (let i = 0; i < rateLimited; i++) {
  const failed = await generateText({ model, prompt: 'rate-limit please', maxRetries: 0, ...inConversation(conversationId) }).then(
    () => false,
    () => true,
  );
  if (!failed) throw new Error('expected a 429');
}
const runaway = process.env.RUNAWAY_CONVERSATION_ID;
if (runaway) {
  const runawayTools = Number(process.env.RUNAWAY_TOOLS ?? 40);
  await agentTurn(runaway, `runaway: tools=${runawayTools}`, runawayTools);
}
await sdk.shutdown();
