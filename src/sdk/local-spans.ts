// A finished span as the server will read it: encoded by the OTLP exporter's own protobuf
// serializer, decoded and normalised by the receiver's own code, so the SDK's judge cannot read a
// span differently from Breakwater.

import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { decodeTraceRequestProtobuf } from '../codecs/decode-protobuf.js';
import type { AgentSpan } from '../contracts/agent-span.js';
import { normalizeRequest } from '../normalize/normalize.js';

/** The AgentSpans the receiver would make of these spans (those it would reject left out). */
export function agentSpansOf(spans: ReadableSpan[]): AgentSpan[] {
  const bytes = ProtobufTraceSerializer.serializeRequest(spans);
  if (bytes === undefined) return [];
  return normalizeRequest(decodeTraceRequestProtobuf(bytes), { requireTenant: true }).spans;
}
