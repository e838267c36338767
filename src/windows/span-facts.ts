// What the windows need from one span, computed once per span by the store and shared by the
// run, tenant, provider and model windows it updates.

import type { AgentSpan } from '../contracts/agent-span.js';
import { classifyOutcome, countsAsTenantError, isProviderAttributed } from '../normalize/call-outcome.js';
import type { ModelPrice } from '../policy/policy-types.js';
import { callCostUsd } from './cost.js';
import { FUTURE_TOLERANCE_MS, nanosToMillis, secondOf } from './window-time.js';

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

export interface SpanFacts {
  kind: SpanKind;
  /** a model call or a tool call */
  isStep: boolean;
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

/** The model a span is keyed by: responseModel, else requestModel ('' when neither); prices fall back further (cost.ts). */
export function spanModel(span: Pick<AgentSpan, 'responseModel' | 'requestModel'>): string {
  return span.responseModel !== '' ? span.responseModel : span.requestModel;
}

function tokenCount(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0;
}

export function blankFacts(): SpanFacts {
  return { kind: 'other', isStep: false, isErrorCall: false, isProviderFailure: false, startMs: 0, endMs: 0, endSec: 0, latencyMs: 0, inputTokens: 0, outputTokens: 0, tokens: 0, costUsd: 0, depth: -1, inWindow: true };
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
