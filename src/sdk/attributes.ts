// Attribute names the SDK writes: the OpenTelemetry GenAI semantic conventions, plus Breakwater's
// own run identity (tenant.id, agent.run.id, agent.depth) that Breakwater reads from every span.

export const ATTR = {
  tenantId: 'tenant.id',
  runId: 'agent.run.id',
  depth: 'agent.depth',
  operation: 'gen_ai.operation.name',
  provider: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  responseId: 'gen_ai.response.id',
  finishReasons: 'gen_ai.response.finish_reasons',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  temperature: 'gen_ai.request.temperature',
  maxTokens: 'gen_ai.request.max_tokens',
  toolName: 'gen_ai.tool.name',
  toolCallId: 'gen_ai.tool.call.id',
  toolType: 'gen_ai.tool.type',
  agentName: 'gen_ai.agent.name',
  agentId: 'gen_ai.agent.id',
  conversationId: 'gen_ai.conversation.id',
  errorType: 'error.type',
  httpStatusCode: 'http.response.status_code',
} as const;

/** Provider rate-limit headers Breakwater's quota telemetry reads, recorded as http.response.header.<name>. */
export const RATE_LIMIT_HEADERS = [
  'retry-after',
  'retry-after-ms',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-limit-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-reset-requests',
  'x-ratelimit-reset-tokens',
] as const;
