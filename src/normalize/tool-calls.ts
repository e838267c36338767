// Tool calls a model response asked for, counted as the trace's tool calls only when that trace
// has no explicit tool span: most client-level instrumentations emit no tool span at all, and an
// agent that does emit them must not have each call counted twice.
//
// The rule needs to know whether a trace had a tool span. Within one export it is exact; across
// exports a bounded memory of traces that had one (ToolSpanTraces) is kept, so a tool span that
// arrives after its model span's export is counted twice (docs/ingest.md).

import type { AgentSpan } from '../contracts/agent-span.js';
import type { AnyValue } from '../codecs/otlp-model.js';
import { REQUESTED_TOOL_CALLS, TOOL_CALL_FINISH_REASONS, TOOL_OPERATION } from './conventions.js';

/** What one model span's response says about the tool calls it asked for. */
export class RequestedToolCalls {
  /** choices whose finish reason asks for tools */
  reasons = 0;
  readonly names: string[] = [];
  #openInference = 0;
  #outputMessages = '';
  #vercel = '';

  reset(): void {
    this.reasons = 0;
    this.names.length = 0;
    this.#openInference = 0;
    this.#outputMessages = '';
    this.#vercel = '';
  }

  /** Reads the attribute if it is one of REQUESTED_TOOL_CALLS; true when it was. */
  read(key: string, value: AnyValue): boolean {
    if (key === REQUESTED_TOOL_CALLS.finishReasons) {
      for (const reason of Array.isArray(value) ? value : [value]) if (typeof reason === 'string' && isToolCallReason(reason)) this.reasons++;
      return true;
    }
    if (key === REQUESTED_TOOL_CALLS.outputMessages) {
      if (typeof value === 'string') this.#outputMessages = value;
      return true;
    }
    if (key === REQUESTED_TOOL_CALLS.vercelToolCalls) {
      if (typeof value === 'string') this.#vercel = value;
      return true;
    }
    if (key.endsWith(REQUESTED_TOOL_CALLS.openInferenceSuffix) && key.startsWith(REQUESTED_TOOL_CALLS.openInferencePrefix)) {
      if (this.#openInference < MAX_NAMES && typeof value === 'string') {
        this.#openInference++;
        this.names.push(value);
      }
      return true;
    }
    return false;
  }

  /**
   * The calls asked for, with their names where the span gave them ('' where only a finish reason
   * said so). One source is read, the most precise the span has: the sources describe the same calls.
   */
  calls(): { count: number; names: readonly string[] } {
    if (this.#openInference === 0) {
      if (this.#outputMessages.includes('tool_call')) parseNames(this.#outputMessages, this.names, outputMessageNames);
      else if (this.#vercel !== '') parseNames(this.#vercel, this.names, vercelNames);
    }
    return { count: Math.max(this.reasons, this.names.length), names: this.names };
  }
}

/** At most this many tool calls are read from one response (a bound on the work and the stored name). */
const MAX_NAMES = 64;
/** Longer JSON is not parsed for names: the finish reasons still count the calls. */
const MAX_PARSED_CHARS = 1 << 20;

function isToolCallReason(reason: string): boolean {
  return TOOL_CALL_FINISH_REASONS.has(reason.toLowerCase().replace(/[^a-z]/g, ''));
}

function parseNames(json: string, names: string[], read: (parsed: unknown, names: string[]) => void): void {
  if (json.length > MAX_PARSED_CHARS) return;
  try {
    read(JSON.parse(json) as unknown, names);
  } catch {
    // Not JSON: the names stay unknown.
  }
}

/** GenAI semconv output messages: `[{ role, parts: [{ type: 'tool_call', name }] }]`. */
function outputMessageNames(parsed: unknown, names: string[]): void {
  if (!Array.isArray(parsed)) return;
  for (const message of parsed) {
    const parts = (message as { parts?: unknown } | null)?.parts;
    if (!Array.isArray(parts)) continue;
    for (const part of parts) {
      const p = part as { type?: unknown; name?: unknown } | null;
      if (p?.type === 'tool_call' && names.length < MAX_NAMES) names.push(typeof p.name === 'string' ? p.name : '');
    }
  }
}

/** Vercel AI SDK `ai.response.toolCalls`: `[{ toolCallId, toolName, input }]`. */
function vercelNames(parsed: unknown, names: string[]): void {
  if (!Array.isArray(parsed)) return;
  for (const call of parsed) {
    const name = (call as { toolName?: unknown } | null)?.toolName;
    if (names.length < MAX_NAMES) names.push(typeof name === 'string' ? name : '');
  }
}

/**
 * Trace ids that had an explicit tool span, most recent first, up to a bound: a trace evicted
 * from it is one whose tool spans arrived long enough ago that its model spans have too.
 */
export class ToolSpanTraces {
  readonly #traces = new Map<string, true>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#traces.size;
  }

  has(traceId: string): boolean {
    return this.#traces.has(traceId);
  }

  add(traceId: string): void {
    this.#traces.delete(traceId);
    this.#traces.set(traceId, true);
    if (this.#traces.size > this.capacity) this.#traces.delete(this.#traces.keys().next().value!);
  }
}

/** One trace id per entry: room for the recent traces of many busy tenants. */
export const DEFAULT_TOOL_SPAN_TRACES = 65_536;

/**
 * The second pass over one request's spans: model spans keep the tool calls their response asked
 * for only when no tool span of their trace is in this request or was seen before (`remembered`).
 */
export function settleRequestedToolCalls(spans: AgentSpan[], remembered: ToolSpanTraces | undefined): void {
  let inRequest: Set<string> | undefined;
  for (const span of spans) {
    if (span.operation !== TOOL_OPERATION) continue;
    (inRequest ??= new Set()).add(span.traceId);
    remembered?.add(span.traceId);
  }
  if (inRequest === undefined && (remembered === undefined || remembered.size === 0)) return;
  for (const span of spans) {
    if (span.operation === TOOL_OPERATION || span.toolCalls === 0) continue;
    if (inRequest?.has(span.traceId) === true || remembered?.has(span.traceId) === true) {
      span.toolCalls = 0;
      span.toolName = '';
    }
  }
}
