// What the windows need from one span, computed once per span by the store and shared by the
// run, tenant, provider and model windows it updates.

import type { AgentSpan } from '../contracts/agent-span.js';
import { classifyOutcome, countsAsTenantError, isProviderAttributed } from '../normalize/call-outcome.js';
import type { ModelPrice } from '../policy/policy-types.js';
import { callCostUsd } from './cost.js';
import { AGGREGATE_OPERATIONS, spanKind, type SpanKind } from '../normalize/conventions.js';
import { FUTURE_TOLERANCE_MS, nanosToMillis, secondOf } from './window-time.js';

// The step kinds are defined with the other conventions, in normalize/conventions.ts.
export { AGENT_OPERATION, AGGREGATE_OPERATIONS, MODEL_OPERATIONS, spanKind, TOOL_OPERATION, type SpanKind } from '../normalize/conventions.js';

export interface SpanFacts {
  kind: SpanKind;
  /** a model call or a tool call: one call, with one outcome for the error ratios */
  isStep: boolean;
  /** tool calls the span stands for (AgentSpan.toolCalls; 1 for a tool span) */
  toolCalls: number;
  /** steps the span counts for: the model call and the tool calls its response asked for, or the tool call */
  steps: number;
  /** a step that errored by the tenant's own doing (call-outcome.ts: no 429, no provider-attributed failure); false for non-steps */
  isErrorCall: boolean;
  /** a model call the provider failed (5xx, overloaded, timeout, connection): the provider windows' errors */
  isProviderFailure: boolean;
  /** epoch ms; never after endMs */
  startMs: number;
  /** epoch ms, clamped to the clock when more than FUTURE_TOLERANCE_MS ahead of it */
  endMs: number;
  /** the epoch second the span is bucketed in (of endMs) */
  endSec: number;
  /** the span's own duration (end - start as reported, not clamped), ms */
  latencyMs: number;
  inputTokens: number;
  outputTokens: number;
  /** inputTokens + outputTokens */
  tokens: number;
  costUsd: number;
  /** agent.depth when the span carried it, else -1 */
  depth: number;
  /** false for a late span (ends before the rolling window): cumulative counters only */
  inWindow: boolean;
}

/** Tool calls a span stands for: 1 for a tool span, a model span's counted requested calls, else 0. */
export function spanToolCalls(span: Pick<AgentSpan, 'operation' | 'toolCalls'>): number {
  const kind = spanKind(span.operation);
  if (kind === 'tool') return 1;
  return kind === 'model' && Number.isFinite(span.toolCalls) && span.toolCalls > 0 ? span.toolCalls : 0;
}

/** Steps a span counts for (SpanFacts.steps), for those that count steps without the facts. */
export function spanSteps(span: Pick<AgentSpan, 'operation' | 'toolCalls'>): number {
  return (spanKind(span.operation) === 'model' ? 1 : 0) + spanToolCalls(span);
}

/** The model a span is keyed by: responseModel, else requestModel ('' when neither); prices fall back further (cost.ts). */
export function spanModel(span: Pick<AgentSpan, 'responseModel' | 'requestModel'>): string {
  return span.responseModel !== '' ? span.responseModel : span.requestModel;
}

function tokenCount(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0;
}

export function blankFacts(): SpanFacts {
  return { kind: 'other', isStep: false, toolCalls: 0, steps: 0, isErrorCall: false, isProviderFailure: false, startMs: 0, endMs: 0, endSec: 0, latencyMs: 0, inputTokens: 0, outputTokens: 0, tokens: 0, costUsd: 0, depth: -1, inWindow: true };
}

/**
 * Everything but `inWindow`, which needs the store's window time (set by the store), written into
 * `out`: the store passes one object for every span, read before the next span's facts replace it
 * (a fresh object per span, with its numbers boxed, was a tenth of the ingest path's garbage).
 */
export function spanFacts(
  span: AgentSpan,
  nowMs: number,
  prices: Readonly<Record<string, ModelPrice>>,
  out: SpanFacts = blankFacts(),
): SpanFacts {
  const kind = spanKind(span.operation);
  const isStep = kind === 'model' || kind === 'tool';
  const rawEndMs = nanosToMillis(span.endTimeUnixNano);
  const endMs = rawEndMs > nowMs + FUTURE_TOLERANCE_MS ? nowMs : rawEndMs;
  const rawStartMs = nanosToMillis(span.startTimeUnixNano);
  // The span's own duration, before any clamping of its end.
  const latencyMs = Math.max(0, rawEndMs - rawStartMs);
  // A missing (0) or inverted start would stretch durations to decades: fall back to the end.
  const startMs = rawStartMs <= 0 || rawStartMs > endMs ? endMs : rawStartMs;

  const counted = !AGGREGATE_OPERATIONS.has(span.operation);
  const inputTokens = counted ? tokenCount(span.inputTokens) : 0;
  const outputTokens = counted ? tokenCount(span.outputTokens) : 0;
  // The same pricing as the span rows the ingest pipeline persists.
  const costUsd = callCostUsd(prices, span.responseModel, span.requestModel, inputTokens, outputTokens);

  out.kind = kind;
  out.isStep = isStep;
  out.toolCalls = spanToolCalls(span);
  out.steps = (kind === 'model' ? 1 : 0) + out.toolCalls;
  // A 429 shapes traffic and a provider's failure opens its breakers: neither is the tenant's error.
  const outcome = isStep ? classifyOutcome(span) : undefined;
  out.isErrorCall = outcome !== undefined && countsAsTenantError(outcome, kind === 'model', span.provider);
  out.isProviderFailure = outcome !== undefined && isProviderAttributed(outcome, kind === 'model', span.provider);
  out.startMs = startMs;
  out.endMs = endMs;
  out.endSec = secondOf(endMs);
  out.latencyMs = latencyMs;
  out.inputTokens = inputTokens;
  out.outputTokens = outputTokens;
  out.tokens = inputTokens + outputTokens;
  out.costUsd = costUsd;
  out.depth = Number.isInteger(span.depth) && span.depth >= 0 ? span.depth : -1;
  out.inWindow = true;
  return out;
}
