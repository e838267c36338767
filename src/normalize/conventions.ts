// Where instrumentations put a span's run, provider and models, as data: for each AgentSpan field,
// the attribute keys that set it, best first. A span takes the value of the best key it carries
// (attribute order does not matter); an empty value counts as absent.

/** Operations that are model calls (steps, counted by modelCallsPerMinute and the provider windows). */
export const MODEL_OPERATIONS: ReadonlySet<string> = new Set([
  'chat',
  'generate_content',
  'text_completion',
  'embeddings',
]);
export const TOOL_OPERATION = 'execute_tool';
export const AGENT_OPERATION = 'invoke_agent';
/**
 * Operations whose token attributes are roll-ups of their children's usage (agent frameworks put
 * the run's total usage on the agent span); counting them too would count every token twice.
 */
export const AGGREGATE_OPERATIONS: ReadonlySet<string> = new Set([AGENT_OPERATION, 'create_agent']);

export type SpanKind = 'model' | 'tool' | 'agent' | 'other';

export function spanKind(operation: string): SpanKind {
  if (MODEL_OPERATIONS.has(operation)) return 'model';
  if (operation === TOOL_OPERATION) return 'tool';
  if (operation === AGENT_OPERATION) return 'agent';
  return 'other';
}

/** The AgentSpan text fields read by rank. */
export type RankedField = 'runId' | 'provider' | 'requestModel' | 'responseModel';

/**
 * Conversation and session ids that group a loop's traces into one run when no `agent.run.id` is
 * set: GenAI semconv, OpenInference, OpenLLMetry association properties, Vercel AI SDK metadata.
 */
export const CONVERSATION_RUN_KEYS: readonly string[] = [
  'gen_ai.conversation.id',
  'session.id',
  'traceloop.association.properties.conversation_id',
  'traceloop.association.properties.session_id',
  'traceloop.association.properties.chat_id',
  'ai.telemetry.metadata.conversationId',
  'ai.telemetry.metadata.sessionId',
  'ai.telemetry.metadata.chatId',
  // AI SDK 7 replaced telemetry metadata with the runtime context it records
  'ai.settings.context.conversationId',
  'ai.settings.context.sessionId',
  'ai.settings.context.chatId',
];

/** The fixed table; the policy's `runKeys` go between `agent.run.id` and the conversation keys. */
export const CONVENTIONS: Readonly<Record<RankedField, readonly string[]>> = {
  runId: ['agent.run.id', ...CONVERSATION_RUN_KEYS],
  provider: ['gen_ai.provider.name', 'gen_ai.system', 'llm.provider', 'llm.system', 'ai.model.provider'],
  requestModel: ['gen_ai.request.model', 'llm.model_name', 'ai.model.id'],
  responseModel: ['gen_ai.response.model', 'ai.response.model'],
};

/**
 * What kind of span it is, when `gen_ai.operation.name` does not say: for each attribute other
 * instrumentations name it with, its values (compared as listed; OpenInference's kinds upper-case,
 * OpenLLMetry's lower-case) to the GenAI operation they stand for. The first key of this list a span
 * carries with a listed value decides. Values not listed (Vercel's outer `ai.embed`, OpenLLMetry's
 * `workflow` and `task`) leave the span unclassified, so no wrapper counts as a second call.
 */
export const OPERATION_CONVENTIONS: readonly (readonly [key: string, values: Readonly<Record<string, string>>])[] = [
  ['openinference.span.kind', { LLM: 'chat', TOOL: 'execute_tool', AGENT: 'invoke_agent', EMBEDDING: 'embeddings', RETRIEVER: 'retrieval' }],
  [
    'ai.operationId',
    {
      // The provider call of each step; the outer call wraps all the steps of one generation.
      'ai.generateText.doGenerate': 'chat',
      'ai.streamText.doStream': 'chat',
      'ai.generateObject.doGenerate': 'chat',
      'ai.streamObject.doStream': 'chat',
      'ai.embed.doEmbed': 'embeddings',
      'ai.embedMany.doEmbed': 'embeddings',
      'ai.toolCall': 'execute_tool',
      'ai.generateText': 'invoke_agent',
      'ai.streamText': 'invoke_agent',
      'ai.generateObject': 'invoke_agent',
      'ai.streamObject': 'invoke_agent',
    },
  ],
  ['traceloop.span.kind', { tool: 'execute_tool', agent: 'invoke_agent' }],
  ['llm.request.type', { chat: 'chat', completion: 'text_completion', embedding: 'embeddings', rerank: 'rerank' }],
];

/** Keys naming the tool an explicit tool span ran, best first (OpenLLMetry's entity name only on its tool spans). */
export const TOOL_NAME_KEYS: readonly string[] = ['gen_ai.tool.name', 'tool.name', 'ai.toolCall.name'];
export const TRACELOOP_ENTITY_NAME = 'traceloop.entity.name';

/**
 * Where a model span says which tool calls its response asked for. They count as the trace's tool
 * calls only when no explicit tool span exists in that trace (normalize/tool-calls.ts), once each.
 */
export const REQUESTED_TOOL_CALLS = {
  /** an array, one reason per choice; a choice with a tool-call reason asked for at least one call */
  finishReasons: 'gen_ai.response.finish_reasons',
  /** GenAI semconv JSON messages with `{ type: 'tool_call', name }` parts (OpenLLMetry, semconv-based SDKs) */
  outputMessages: 'gen_ai.output.messages',
  /** Vercel AI SDK JSON `[{ toolName }]` */
  vercelToolCalls: 'ai.response.toolCalls',
  /** OpenInference flattens the response: `llm.output_messages.N.message.tool_calls.M.tool_call.function.name` */
  openInferencePrefix: 'llm.output_messages.',
  openInferenceSuffix: '.tool_call.function.name',
} as const;

/** Finish reasons meaning "call these tools", lower-cased without separators (tool_calls, tool-calls, tool_call, tool_use, function_call). */
export const TOOL_CALL_FINISH_REASONS: ReadonlySet<string> = new Set(['toolcalls', 'toolcall', 'tooluse', 'functioncall']);

/** Every key of the tables: the decoder keeps them past its attribute cap. */
export const CONVENTION_KEYS: readonly string[] = [
  ...Object.values(CONVENTIONS).flat(),
  ...OPERATION_CONVENTIONS.map(([key]) => key),
  ...TOOL_NAME_KEYS,
  TRACELOOP_ENTITY_NAME,
  REQUESTED_TOOL_CALLS.finishReasons,
  REQUESTED_TOOL_CALLS.outputMessages,
  REQUESTED_TOOL_CALLS.vercelToolCalls,
];

export interface KeySource {
  field: RankedField;
  /** lower wins */
  rank: number;
}

/** The table with the policy's run keys, as one lookup from attribute key to the field it sets. */
export function conventionLookup(runKeys: readonly string[] = []): ReadonlyMap<string, KeySource> {
  const lookup = new Map<string, KeySource>();
  for (const [field, keys] of Object.entries(CONVENTIONS) as [RankedField, readonly string[]][]) {
    const ordered = field === 'runId' ? [keys[0]!, ...runKeys, ...keys.slice(1)] : keys;
    // A key listed twice keeps its better rank.
    ordered.forEach((key, rank) => {
      if (!lookup.has(key)) lookup.set(key, { field, rank });
    });
  }
  return lookup;
}

/**
 * Vercel AI SDK provider ids name the API too (`openai.chat`, `anthropic.messages`): the provider is
 * the part before it. Only these endings are cut, since semconv names have dots of their own
 * (`aws.bedrock`, `azure.ai.openai`).
 */
const API_SUFFIXES = ['.chat', '.completion', '.responses', '.messages', '.embedding', '.image', '.transcription', '.speech'];

/** Provider names as people say them: lowercase (OpenLLMetry sends `Anthropic`), without an API suffix. */
export function providerName(raw: string): string {
  const name = raw.trim().toLowerCase();
  for (const suffix of API_SUFFIXES) if (name.endsWith(suffix) && name.length > suffix.length) return name.slice(0, -suffix.length);
  return name;
}
