// Where instrumentations put a span's run, provider and models, as data: for each AgentSpan field,
// the attribute keys that set it, best first. A span takes the value of the best key it carries
// (attribute order does not matter); an empty value counts as absent.

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
];

/** The fixed table; the policy's `runKeys` go between `agent.run.id` and the conversation keys. */
export const CONVENTIONS: Readonly<Record<RankedField, readonly string[]>> = {
  runId: ['agent.run.id', ...CONVERSATION_RUN_KEYS],
  provider: ['gen_ai.provider.name', 'gen_ai.system', 'llm.provider', 'llm.system', 'ai.model.provider'],
  requestModel: ['gen_ai.request.model', 'llm.model_name', 'ai.model.id'],
  responseModel: ['gen_ai.response.model', 'ai.response.model'],
};

/** Every key of the table: the decoder keeps them past its attribute cap. */
export const CONVENTION_KEYS: readonly string[] = Object.values(CONVENTIONS).flat();

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
