import type { KeyValue, OtlpEvent, OtlpLink } from '../codecs/otlp-model.js';

/**
 * One span as Breakwater understands it: everything OTLP carried, plus the agent columns read
 * from the GenAI semantic conventions (and their older / neighbouring spellings).
 * Strings are '' and numbers 0 when the span did not carry the attribute.
 */
export interface AgentSpan {
  tenantId: string;
  /** `agent.run.id`, else a policy run key or a conversation / session id, else the trace id (normalize/conventions.ts) */
  runId: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  flags: number;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  statusCode: number;
  statusMessage: string;
  serviceName: string;
  scopeName: string;
  scopeVersion: string;
  resourceAttributes: KeyValue[];
  spanAttributes: KeyValue[];
  events: OtlpEvent[];
  links: OtlpLink[];
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;

  /**
   * gen_ai.operation.name, normalised: chat, execute_tool, invoke_agent, ... ('' if not a GenAI span);
   * from the other instrumentations' span kinds when absent (normalize/conventions.ts). The step kind.
   */
  operation: string;
  /** gen_ai.provider.name (or gen_ai.system) */
  provider: string;
  requestModel: string;
  responseModel: string;
  /** the tool an execute_tool span ran; on a model span, the tools its response asked for when they count (toolCalls), comma-separated */
  toolName: string;
  /**
   * Tool calls this span stands for: 1 for a tool span, on a model span the calls its response
   * asked for when its trace has no tool span (normalize/tool-calls.ts), else 0.
   */
  toolCalls: number;
  agentId: string;
  agentName: string;
  conversationId: string;
  inputTokens: number;
  outputTokens: number;
  /** error.type, or the status message class when the status is ERROR */
  errorType: string;
  /** http.response.status_code, 0 when absent */
  httpStatusCode: number;
  /** true when status is ERROR or error.type is set */
  isError: boolean;
  /**
   * Sub-agent depth: 0 for the root agent. From the `agent.depth` attribute the SDK stamps;
   * -1 when the span did not say (the windows then derive it from invoke_agent parent links).
   */
  depth: number;
  /** Quota telemetry from provider rate-limit headers recorded on the span; -1 when absent. */
  rateLimitRemainingRequests: number;
  rateLimitRemainingTokens: number;
  rateLimitLimitRequests: number;
  rateLimitLimitTokens: number;
  /** retry-after in milliseconds; -1 when absent */
  retryAfterMs: number;
}
