// Helpers for the spans every agent makes, named and attributed as the OpenTelemetry GenAI semantic
// conventions say, so Breakwater and any other OTel backend read them alike.

import { SpanKind, SpanStatusCode, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { ATTR, RATE_LIMIT_HEADERS } from './attributes.js';

export type ModelOperation = 'chat' | 'generate_content' | 'text_completion' | 'embeddings';

export interface ModelCallRequest {
  /** gen_ai.provider.name: openai, anthropic, aws.bedrock, gcp.vertex_ai ... */
  provider: string;
  /** gen_ai.request.model */
  model: string;
  /** gen_ai.operation.name; default chat */
  operation?: ModelOperation;
  temperature?: number;
  maxTokens?: number;
  conversationId?: string;
  attributes?: Attributes;
}

/** What the model call reports back; return more fields, they are passed through. */
export interface ModelUsage {
  inputTokens?: number;
  outputTokens?: number;
  /** gen_ai.response.model, when the provider answered with a more exact model name */
  responseModel?: string;
  responseId?: string;
  finishReasons?: string[];
  /** the provider's response headers: rate-limit and retry-after ones are recorded for quota telemetry */
  headers?: HeaderSource;
}

export interface ToolCallOptions {
  /** gen_ai.tool.call.id */
  callId?: string;
  /** gen_ai.tool.type: function, extension, datastore; default function */
  type?: string;
  attributes?: Attributes;
}

type HeaderSource = Headers | Record<string, string | string[] | number | undefined>;

export async function modelCallSpan<R extends ModelUsage>(tracer: Tracer, request: ModelCallRequest, fn: (span: Span) => Promise<R> | R): Promise<R> {
  const operation = request.operation ?? 'chat';
  const attributes: Attributes = {
    ...request.attributes,
    [ATTR.operation]: operation,
    [ATTR.provider]: request.provider,
    [ATTR.requestModel]: request.model,
  };
  if (request.temperature !== undefined) attributes[ATTR.temperature] = request.temperature;
  if (request.maxTokens !== undefined) attributes[ATTR.maxTokens] = request.maxTokens;
  if (request.conversationId !== undefined) attributes[ATTR.conversationId] = request.conversationId;
  return tracer.startActiveSpan(`${operation} ${request.model}`, { kind: SpanKind.CLIENT, attributes }, async (span) => {
    try {
      const result = await fn(span);
      recordUsage(span, result);
      return result;
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

export async function toolCallSpan<T>(tracer: Tracer, name: string, fn: (span: Span) => Promise<T> | T, options: ToolCallOptions = {}): Promise<T> {
  const attributes: Attributes = {
    ...options.attributes,
    [ATTR.operation]: 'execute_tool',
    [ATTR.toolName]: name,
    [ATTR.toolType]: options.type ?? 'function',
  };
  if (options.callId !== undefined) attributes[ATTR.toolCallId] = options.callId;
  return tracer.startActiveSpan(`execute_tool ${name}`, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

function recordUsage(span: Span, result: ModelUsage | undefined): void {
  if (result === undefined || result === null || typeof result !== 'object') return;
  if (isCount(result.inputTokens)) span.setAttribute(ATTR.inputTokens, result.inputTokens);
  if (isCount(result.outputTokens)) span.setAttribute(ATTR.outputTokens, result.outputTokens);
  if (result.responseModel) span.setAttribute(ATTR.responseModel, result.responseModel);
  if (result.responseId) span.setAttribute(ATTR.responseId, result.responseId);
  if (result.finishReasons) span.setAttribute(ATTR.finishReasons, result.finishReasons);
  if (result.headers) recordRateLimitHeaders(span, result.headers);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/**
 * error.type (the error's class name, else its code, else the HTTP status, else _OTHER), status
 * ERROR with the message, the exception event, and http.response.status_code plus rate-limit headers
 * when the error carries them (provider SDK errors do: status / statusCode / response.status, headers).
 */
export function recordError(span: Span, err: unknown): void {
  const status = httpStatusOf(err);
  const e = err as { name?: unknown; code?: unknown; message?: unknown; headers?: unknown; response?: { headers?: unknown } } | null;
  const name = typeof e?.name === 'string' && e.name !== 'Error' ? e.name : undefined;
  const code = typeof e?.code === 'string' || typeof e?.code === 'number' ? String(e.code) : undefined;
  span.setAttribute(ATTR.errorType, name ?? code ?? (status !== undefined ? String(status) : '_OTHER'));
  if (status !== undefined) span.setAttribute(ATTR.httpStatusCode, status);
  const headers = e?.headers ?? e?.response?.headers;
  if (headers !== undefined && headers !== null && typeof headers === 'object') recordRateLimitHeaders(span, headers as HeaderSource);
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: typeof e?.message === 'string' ? e.message : String(err) });
}

function httpStatusOf(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { status?: unknown; statusCode?: unknown; response?: { status?: unknown; statusCode?: unknown } };
  for (const candidate of [e.status, e.statusCode, e.response?.status, e.response?.statusCode]) {
    if (typeof candidate === 'number' && Number.isInteger(candidate) && candidate >= 100 && candidate <= 599) return candidate;
  }
  return undefined;
}

function recordRateLimitHeaders(span: Span, headers: HeaderSource): void {
  const read = (name: string): string | undefined => {
    if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
    const record = headers as Record<string, string | string[] | number | undefined>;
    const value = record[name] ?? record[Object.keys(record).find((k) => k.toLowerCase() === name) ?? ''];
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value[0] : String(value);
  };
  for (const name of RATE_LIMIT_HEADERS) {
    const value = read(name);
    // string arrays, as the HTTP semantic conventions record headers
    if (value !== undefined && value !== '') span.setAttribute(`http.response.header.${name}`, [value]);
  }
}
