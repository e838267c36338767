import type { AgentSpan } from '../contracts/agent-span.js';
import { attributeColumns } from './attribute-columns.js';
import { SPAN_KIND_NAMES, STATUS_CODE_NAMES } from '../codecs/otlp-model.js';
import { classifyOutcome, errorClassOf } from '../normalize/call-outcome.js';

const NS_PER_SECOND = 1_000_000_000n;

/**
 * DateTime64(9) text: seconds and nine digits of nanoseconds. ClickHouse parses it only with
 * 10-digit seconds (2001-09-09 on) and below 2^63 ns; other times fail the whole insert.
 */
export function dateTime64Text(unixNano: bigint): string {
  const seconds = unixNano / NS_PER_SECOND;
  const nanos = unixNano % NS_PER_SECOND;
  return `${seconds}.${nanos.toString().padStart(9, '0')}`;
}

/**
 * The `spans` row for one span, as JSONEachRow. `costUsd` comes from the tenant's price table.
 * Ingest no longer sends these (span-block.ts encodes Native columns); this straightforward form
 * is the reference the encoder is tested against, field by field (test/storage/span-block.test.ts).
 */
export function spanRow(span: AgentSpan, costUsd: number): Record<string, unknown> {
  const resource = attributeColumns(span.resourceAttributes);
  const attributes = attributeColumns(span.spanAttributes);
  const events = span.events.map((e) => ({ event: e, columns: attributeColumns(e.attributes) }));
  const links = span.links.map((l) => ({ link: l, columns: attributeColumns(l.attributes) }));
  return {
    TenantId: span.tenantId,
    RunId: span.runId,
    TraceId: span.traceId,
    SpanId: span.spanId,
    ParentSpanId: span.parentSpanId,
    TraceState: span.traceState,
    Flags: span.flags,
    SpanName: span.name,
    SpanKind: SPAN_KIND_NAMES[span.kind] ?? String(span.kind),
    ServiceName: span.serviceName,
    ScopeName: span.scopeName,
    ScopeVersion: span.scopeVersion,
    StartTime: dateTime64Text(span.startTimeUnixNano),
    EndTime: dateTime64Text(span.endTimeUnixNano),
    DurationNs: String(span.endTimeUnixNano - span.startTimeUnixNano),
    StatusCode: STATUS_CODE_NAMES[span.statusCode] ?? String(span.statusCode),
    StatusMessage: span.statusMessage,
    ResourceAttributes: resource.values,
    ResourceAttributeTypes: resource.types,
    SpanAttributes: attributes.values,
    SpanAttributeTypes: attributes.types,
    'Events.Timestamp': events.map((e) => dateTime64Text(e.event.timeUnixNano)),
    'Events.Name': events.map((e) => e.event.name),
    'Events.Attributes': events.map((e) => e.columns.values),
    'Events.AttributeTypes': events.map((e) => e.columns.types),
    'Events.DroppedAttributesCount': events.map((e) => e.event.droppedAttributesCount),
    'Links.TraceId': links.map((l) => l.link.traceId),
    'Links.SpanId': links.map((l) => l.link.spanId),
    'Links.TraceState': links.map((l) => l.link.traceState),
    'Links.Flags': links.map((l) => l.link.flags),
    'Links.Attributes': links.map((l) => l.columns.values),
    'Links.AttributeTypes': links.map((l) => l.columns.types),
    'Links.DroppedAttributesCount': links.map((l) => l.link.droppedAttributesCount),
    DroppedAttributesCount: span.droppedAttributesCount,
    DroppedEventsCount: span.droppedEventsCount,
    DroppedLinksCount: span.droppedLinksCount,
    Operation: span.operation,
    Provider: span.provider,
    RequestModel: span.requestModel,
    ResponseModel: span.responseModel,
    ToolName: span.toolName,
    AgentId: span.agentId,
    AgentName: span.agentName,
    ConversationId: span.conversationId,
    InputTokens: span.inputTokens,
    OutputTokens: span.outputTokens,
    CostUsd: costUsd,
    ErrorType: span.errorType,
    HttpStatusCode: span.httpStatusCode,
    IsError: span.isError,
    ErrorClass: errorClassOf(classifyOutcome(span)),
    Depth: Math.max(-1, Math.min(32767, span.depth)),
    ToolCalls: Math.max(0, Math.min(0xffff, span.toolCalls)),
    RateLimitRemainingRequests: span.rateLimitRemainingRequests,
    RateLimitRemainingTokens: span.rateLimitRemainingTokens,
    RateLimitLimitRequests: span.rateLimitLimitRequests,
    RateLimitLimitTokens: span.rateLimitLimitTokens,
    RetryAfterMs: span.retryAfterMs,
  };
}
