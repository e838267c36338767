import type { AgentSpan } from '../../src/contracts/agent-span.js';

/**
 * An AgentSpan with every field at its "not carried" value ('' / 0 / -1 / empty lists), for tests
 * and benchmarks that build spans by hand; callers set what matters to them.
 */
export function blankAgentSpan(overrides: Partial<AgentSpan> = {}): AgentSpan {
  return {
    tenantId: '',
    runId: '',
    traceId: '',
    spanId: '',
    parentSpanId: '',
    traceState: '',
    flags: 0,
    name: '',
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    statusCode: 0,
    statusMessage: '',
    serviceName: '',
    scopeName: '',
    scopeVersion: '',
    resourceAttributes: [],
    spanAttributes: [],
    events: [],
    links: [],
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    operation: '',
    provider: '',
    requestModel: '',
    responseModel: '',
    toolName: '',
    toolCalls: 0,
    agentId: '',
    agentName: '',
    conversationId: '',
    inputTokens: 0,
    outputTokens: 0,
    errorType: '',
    httpStatusCode: 0,
    isError: false,
    depth: -1,
    rateLimitRemainingRequests: -1,
    rateLimitRemainingTokens: -1,
    rateLimitLimitRequests: -1,
    rateLimitLimitTokens: -1,
    retryAfterMs: -1,
    ...overrides,
  };
}
