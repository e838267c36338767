// Two taxonomies kept apart, as DESIGN.md's "429 is not 5xx" asks:
//
// - classifyOutcome: what a model call says about the provider's health. Only 5xx, timeouts and
//   connection errors are failures (they feed the provider and model breakers); a 429 is
//   `rate_limited` and never a failure; other 4xx mean the provider answered (a success for health).
// - classifyRateLimit: what kind of quota a 429 exhausted (request rate, token rate or a daily
//   quota), from the status, the retry-after and rate-limit headers and the error texts recorded on
//   the span, and when it resets. Each kind wants a different response: wait a moment, wait for
//   tokens to refill, or route elsewhere.

import type { AgentSpan } from '../contracts/agent-span.js';
import { errorTexts, resetHeaders } from './span-signals.js';

export type FailureCause = 'http_5xx' | 'timeout' | 'connection';

export type CallOutcome =
  | { kind: 'success' }
  | { kind: 'failure'; cause: FailureCause }
  | { kind: 'rate_limited' }
  /** a 4xx other than 408 and 429: the provider answered; healthy as far as breakers care */
  | { kind: 'client_error' }
  /** an error that says nothing about the provider (the agent's own, or unknown) */
  | { kind: 'other_error' };

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

// error.type values, compared lower-cased with everything but letters and digits removed.
const RATE_LIMIT_TYPES = new Set([
  '429',
  'ratelimiterror',
  'ratelimit',
  'ratelimitexceeded',
  'ratelimited',
  'toomanyrequests',
  'throttlingexception',
  'throttled',
  'resourceexhausted',
  'insufficientquota',
  'quotaexceeded',
  // OpenAI's error object puts the exhausted axis in `type`
  'tokens',
  'requests',
]);
const TIMEOUT_TYPES = new Set([
  'timeout',
  'timeouterror',
  'apitimeouterror',
  'readtimeout',
  'readtimeouterror',
  'connecttimeout',
  'connecttimeouterror',
  'requesttimeout',
  'sockettimeout',
  'deadlineexceeded',
  'etimedout',
  'gatewaytimeout',
  'timeoutexception',
  'modeltimeoutexception',
]);
const CONNECTION_TYPES = new Set([
  'connectionerror',
  'connecterror',
  'apiconnectionerror',
  'connectionreseterror',
  'connectionrefusederror',
  'remotedisconnected',
  'serverdisconnectederror',
  'econnreset',
  'econnrefused',
  'econnaborted',
  'enotfound',
  'eaiagain',
  'epipe',
  'ehostunreach',
  'enetunreach',
  'socketerror',
  'networkerror',
  'fetcherror',
]);
const SERVER_ERROR_TYPES = new Set([
  'internalservererror',
  'internalserverexception',
  'internal',
  'internalerror',
  'servererror',
  'apierror',
  'serviceunavailable',
  'serviceunavailableexception',
  'unavailable',
  'badgateway',
  'overloaded',
  'overloadederror',
  'modelnotreadyexception',
]);

const TIMEOUT_TEXT = /timed out|\btimeout\b|deadline exceeded|etimedout/;
const CONNECTION_TEXT = /econnreset|econnrefused|connection (?:reset|refused|error|aborted|closed)|socket hang up|network error|enotfound|eai_again/;
const RATE_LIMIT_TEXT = /rate[ _-]?limit|too many requests|quota|resource[ _]exhausted|throttl/;

// Outcomes are shared constants: one is read for every model span, and none is ever changed.
const SUCCESS: CallOutcome = Object.freeze({ kind: 'success' });
const RATE_LIMITED: CallOutcome = Object.freeze({ kind: 'rate_limited' });
const CLIENT_ERROR: CallOutcome = Object.freeze({ kind: 'client_error' });
const OTHER_ERROR: CallOutcome = Object.freeze({ kind: 'other_error' });
const FAILURES: Readonly<Record<FailureCause, CallOutcome>> = {
  timeout: Object.freeze({ kind: 'failure', cause: 'timeout' }),
  http_5xx: Object.freeze({ kind: 'failure', cause: 'http_5xx' }),
  connection: Object.freeze({ kind: 'failure', cause: 'connection' }),
};

/** What a model call says about its provider's health. */
export function classifyOutcome(span: AgentSpan): CallOutcome {
  const status = span.httpStatusCode;
  // The common case, a call that went well, decided without touching the error texts.
  if (!span.isError && span.errorType === '' && (status === 0 || (status >= 200 && status <= 399))) return SUCCESS;
  const type = squash(span.errorType);
  if (status === 429 || RATE_LIMIT_TYPES.has(type)) return RATE_LIMITED;
  if (status >= 500 && status <= 599) return FAILURES[status === 504 ? 'timeout' : 'http_5xx'];
  if (status === 408) return FAILURES.timeout;
  if (/^5\d\d$/.test(type)) return FAILURES[type === '504' ? 'timeout' : 'http_5xx'];
  if (TIMEOUT_TYPES.has(type)) return FAILURES.timeout;
  if (CONNECTION_TYPES.has(type)) return FAILURES.connection;
  if (SERVER_ERROR_TYPES.has(type)) return FAILURES.http_5xx;
  if (status >= 400 && status <= 499) return CLIENT_ERROR;
  if (/^4\d\d$/.test(type)) return type === '408' ? FAILURES.timeout : CLIENT_ERROR;
  if (!span.isError && type === '') return SUCCESS;
  // A generic error type ("Error", "APIError" without a status): read what the texts say.
  const texts = errorTexts(span);
  if (texts.some((t) => RATE_LIMIT_TEXT.test(t))) return RATE_LIMITED;
  if (texts.some((t) => TIMEOUT_TEXT.test(t))) return FAILURES.timeout;
  if (texts.some((t) => CONNECTION_TEXT.test(t))) return FAILURES.connection;
  return span.isError ? OTHER_ERROR : SUCCESS;
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
  const type = squash(span.errorType);
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

function squash(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]/g, '');
}
