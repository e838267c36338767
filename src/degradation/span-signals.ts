// What the degradation path reads from a span's raw attributes beyond the normalized AgentSpan
// columns: the provider key, the task, the SDK's pre-flight estimate, rate-limit reset headers, and
// the error texts (bodies, messages, codes) instrumentations record.

import type { AgentSpan } from '../contracts/agent-span.js';
import type { AnyValue } from '../codecs/otlp-model.js';
import { retryAfterMs } from '../normalize/normalize.js';
import { textOf } from '../normalize/call-outcome.js';
import { headerName } from '../normalize/rate-limit-headers.js';

export { errorTexts, textOf } from '../normalize/call-outcome.js';

export const PREFLIGHT_TOKENS_ATTRIBUTE = 'breakwater.preflight.tokens';
/** set by the SDK on a call it reserved through the API first: the request is not debited twice */
export const PREFLIGHT_RESERVED_ATTRIBUTE = 'breakwater.preflight.reserved';
export const PROVIDER_KEY_ATTRIBUTES = ['gen_ai.provider.key', 'provider.key', 'breakwater.provider.key'] as const;

/**
 * Bit n (n < 32) set: some attribute readSpanExtras looks for, other than the task's, is n
 * characters long. Most keys (gen_ai.*, agent.*) fail this test and skip the string comparisons
 * (24 ns of the 86 a span took, on the bench's spans); longer keys are always compared.
 */
const EXTRA_KEY_LENGTHS = [PREFLIGHT_TOKENS_ATTRIBUTE, PREFLIGHT_RESERVED_ATTRIBUTE, ...PROVIDER_KEY_ATTRIBUTES].reduce(
  (bits, key) => (key.length < 32 ? bits | (1 << key.length) : bits),
  0,
);

export function numberOf(value: AnyValue | undefined): number {
  const v = Array.isArray(value) ? value[0] : value;
  if (typeof v === 'number') return Number.isFinite(v) ? v : NaN;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return NaN;
}

/** Everything the degradation path reads from a model call's attributes, in one pass. */
export interface SpanExtras {
  /** `gen_ai.provider.key` / `provider.key`, else the provider name */
  providerKey: string;
  /** the value of the task attribute ('' when absent) */
  task: string;
  /** the SDK's pre-flight estimate; -1 when absent */
  preflightTokens: number;
  preflightReserved: boolean;
}

export function emptyExtras(): SpanExtras {
  return { providerKey: '', task: '', preflightTokens: -1, preflightReserved: false };
}

/** Into `out` when given (the engine reuses one for every span: a span's extras die with its visit). */
export function readSpanExtras(span: AgentSpan, taskAttribute: string, out: SpanExtras = emptyExtras()): SpanExtras {
  out.providerKey = '';
  out.task = '';
  out.preflightTokens = -1;
  out.preflightReserved = false;
  let keyRank: number = PROVIDER_KEY_ATTRIBUTES.length;
  const attributes = span.spanAttributes;
  for (let i = 0; i < attributes.length; i++) {
    const { key, value } = attributes[i]!;
    if (key === taskAttribute) {
      out.task = textOf(value);
      continue;
    }
    if (key.length < 32 && ((EXTRA_KEY_LENGTHS >>> key.length) & 1) === 0) continue;
    switch (key) {
      case PREFLIGHT_TOKENS_ATTRIBUTE: {
        const n = numberOf(value);
        out.preflightTokens = Number.isFinite(n) && n >= 0 ? Math.min(Math.round(n), 0xffffffff) : -1;
        continue;
      }
      case PREFLIGHT_RESERVED_ATTRIBUTE:
        out.preflightReserved = value === true || textOf(value) === 'true';
        continue;
    }
    const rank = (PROVIDER_KEY_ATTRIBUTES as readonly string[]).indexOf(key);
    if (rank >= 0) {
      const text = textOf(value);
      if (text !== '' && rank < keyRank) {
        out.providerKey = text;
        keyRank = rank;
      }
    }
  }
  if (out.providerKey === '') out.providerKey = span.provider;
  return out;
}

/** Reset times from the rate-limit headers, as ms from the span's end; -1 when absent. */
export interface ResetHeaders {
  requestsResetMs: number;
  tokensResetMs: number;
}

/**
 * OpenAI's `x-ratelimit-reset-requests` / `-tokens` ("1s", "6m0s", "20ms", "1h2m3.5s") and
 * Anthropic's `anthropic-ratelimit-requests-reset` / `-tokens-reset` (RFC 3339 times), bare or
 * under `http.response.header.`, with `-` or `_`.
 */
export function resetHeaders(span: AgentSpan, spanEndMs: number): ResetHeaders {
  const out: ResetHeaders = { requestsResetMs: -1, tokensResetMs: -1 };
  for (const { key, value } of span.spanAttributes) {
    const name = headerName(key);
    switch (name) {
      case 'x-ratelimit-reset-requests':
        out.requestsResetMs = durationMs(textOf(value));
        break;
      case 'x-ratelimit-reset-tokens':
        out.tokensResetMs = durationMs(textOf(value));
        break;
      case 'anthropic-ratelimit-requests-reset':
        out.requestsResetMs = untilMs(textOf(value), spanEndMs);
        break;
      case 'anthropic-ratelimit-tokens-reset':
      case 'anthropic-ratelimit-input-tokens-reset':
      case 'anthropic-ratelimit-output-tokens-reset':
        out.tokensResetMs = Math.max(out.tokensResetMs, untilMs(textOf(value), spanEndMs));
        break;
    }
  }
  return out;
}

/** Go-style durations ("1s", "6m0s", "1h2m3.5s", "20ms"); bare numbers are seconds. -1 when unreadable. */
export function durationMs(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '') return -1;
  const bare = Number(trimmed);
  if (Number.isFinite(bare)) return bare < 0 ? -1 : Math.round(bare * 1000);
  const pattern = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = pattern.exec(trimmed); match !== null; match = pattern.exec(trimmed)) {
    const n = Number(match[1]);
    total += n * ({ h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const)[match[2] as 'h' | 'm' | 's' | 'ms'];
    consumed = pattern.lastIndex;
  }
  return consumed === trimmed.length && consumed > 0 ? Math.round(total) : -1;
}

function untilMs(text: string, fromMs: number): number {
  const at = Date.parse(text.trim());
  if (Number.isNaN(at)) {
    const asRetryAfter = retryAfterMs(text);
    return asRetryAfter;
  }
  return Math.max(0, at - fromMs);
}
