// Two taxonomies kept apart, as DESIGN.md's "429 is not 5xx" asks:
//
// - classifyOutcome (normalize/call-outcome.ts, shared with the windows and storage): what a model
//   call says about the provider's health. Only 5xx, timeouts and connection errors are failures
//   (they feed the provider and model breakers); a 429 is `rate_limited` and never a failure; other
//   4xx mean the provider answered (a success for health).
// - classifyRateLimit: what kind of quota a 429 exhausted (request rate, token rate or a daily
//   quota), from the status, the retry-after and rate-limit headers and the error texts recorded on
//   the span, and when it resets. Each kind wants a different response: wait a moment, wait for
//   tokens to refill, or route elsewhere.

import type { AgentSpan } from '../contracts/agent-span.js';
import { errorTexts, squashType } from '../normalize/call-outcome.js';
import { resetHeaders } from './span-signals.js';

export { classifyOutcome, isProviderAttributed, type CallOutcome, type FailureCause } from '../normalize/call-outcome.js';

export type RateLimitKind = 'request_rate' | 'token_rate' | 'daily';

export interface RateLimitClass {
  kind: RateLimitKind;
  /** billing or credit exhausted (insufficient_quota): no wait fixes it */
  billing: boolean;
  /** ms after the span's end until the limit resets (retry-after, else a reset header); -1 unknown */
  resetMs: number;
  /** what decided the kind, for reasons and audit details */
  evidence: string;
}

const BILLING_TEXT = /insufficient[_ ]quota|exceeded your current quota|billing|credit balance|out of credits|payment required/;
const DAILY_TEXT = /per[ _-]?day|daily|\brpd\b|\btpd\b|requests_per_day|tokens_per_day|perday/;
const TOKEN_TEXT =
  /tokens? per min|tokens? per minute|\btpm\b|token rate|tokens? rate|input[ _]tokens?|output[ _]tokens?|too many tokens|request tokens|token[ _]count|tokenspermin|tokens_per_minute/;
const REQUEST_TEXT =
  /requests? per min|requests? per minute|\brpm\b|request rate|call rate|number of requests|requests_per_minute|requestspermin/;
/** A provider that asks for an hour or more is not describing a per-minute window. */
const DAILY_RETRY_MS = 3_600_000;

/** The kind of quota a rate-limited call ran into, and when it resets. */
export function classifyRateLimit(span: AgentSpan, spanEndMs: number): RateLimitClass {
  const texts = errorTexts(span);
  const type = squashType(span.errorType);
  const resets = resetHeaders(span, spanEndMs);
  const has = (pattern: RegExp) => texts.some((t) => pattern.test(t));
  const reset = (kind: RateLimitKind): number => {
    if (span.retryAfterMs >= 0) return span.retryAfterMs;
    if (kind === 'request_rate') return resets.requestsResetMs;
    if (kind === 'token_rate') return resets.tokensResetMs;
    return Math.max(resets.requestsResetMs, resets.tokensResetMs);
  };
  const result = (kind: RateLimitKind, evidence: string, billing = false): RateLimitClass => ({ kind, billing, resetMs: reset(kind), evidence });

  if (type === 'insufficientquota' || has(BILLING_TEXT)) return result('daily', 'insufficient quota (billing)', true);
  if (has(DAILY_TEXT)) return result('daily', 'error text names a daily quota');
  if (type === 'tokens' || has(TOKEN_TEXT)) return result('token_rate', 'error text names a token rate');
  if (type === 'requests' || has(REQUEST_TEXT)) return result('request_rate', 'error text names a request rate');
  if (span.retryAfterMs >= DAILY_RETRY_MS) return result('daily', `retry-after of ${Math.round(span.retryAfterMs / 1000)} s`);
  if (span.rateLimitRemainingRequests === 0) return result('request_rate', 'x-ratelimit-remaining-requests is 0');
  if (span.rateLimitRemainingTokens === 0) return result('token_rate', 'x-ratelimit-remaining-tokens is 0');
  return result('request_rate', 'a 429 without further detail');
}
