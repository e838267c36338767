// The one classifier of what a call's error means, read by the live windows (error ratios), the
// degradation engine (provider breakers, 429 handling) and storage (the ErrorClass column the
// rollup, dashboards and alerts count), so that all of them agree on "a 429 is quota, not failure".
//
// - success: no error, or an error flag with a 2xx/3xx and nothing else.
// - rate_limited: a 429 however it is spelled: the status, error.type (RateLimitError,
//   ThrottlingException, rate_limit_exceeded, ...), an exception's type, or the error texts.
//   Never an error in an error ratio, never a provider failure.
// - failure: the provider failed (5xx, overloaded, timeouts, connection errors): opens provider breakers.
// - client_error: a 4xx other than 408 and 429: the provider answered (healthy for breakers).
// - other_error: an error that says nothing about the provider (the agent's own, or unknown).
//
// Provider-attributed: a `failure` of a model call to a named provider. The provider breakers
// (src/degradation/provider-health.ts) own it; a tenant's or run's errorRatio never counts it, so a
// provider outage degrades tenants instead of halting them.

import type { AgentSpan } from '../contracts/agent-span.js';
import type { AnyValue, KeyValue } from '../codecs/otlp-model.js';

export type FailureCause = 'http_5xx' | 'timeout' | 'connection';

export type CallOutcome =
  | { kind: 'success' }
  | { kind: 'failure'; cause: FailureCause }
  | { kind: 'rate_limited' }
  /** a 4xx other than 408 and 429: the provider answered; healthy as far as breakers care */
  | { kind: 'client_error' }
  /** an error that says nothing about the provider (the agent's own, or unknown) */
  | { kind: 'other_error' };

/** The value of the spans table's ErrorClass column (schema/clickhouse/007_error_class.sql). */
export type ErrorClass = 'ok' | 'rate_limited' | 'provider_error' | 'client_error' | 'other_error';

// error.type and exception.type values, compared lower-cased with everything but letters and digits
// removed, after the last '.' (Python's `openai.RateLimitError` is `RateLimitError`).
const RATE_LIMIT_TYPES = new Set([
  '429',
  'ratelimiterror',
  'ratelimit',
  'ratelimitexceeded',
  'ratelimited',
  'toomanyrequests',
  'toomanyrequestsexception',
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
  'serviceunavailableerror',
  'serviceunavailableexception',
  'unavailable',
  'badgateway',
  'overloaded',
  'overloadederror',
  'modelnotreadyexception',
]);
const CLIENT_ERROR_TYPES = new Set([
  'badrequesterror',
  'authenticationerror',
  'permissiondeniederror',
  'notfounderror',
  'conflicterror',
  'unprocessableentityerror',
  'invalidrequesterror',
  'validationexception',
  'accessdeniedexception',
]);

/** A status code named in a text: "Error code: 503", "status 429", "HTTP 502". */
const CODE = String.raw`(?:error code|status(?: code)?|http(?: status)?)[:= ]*`;
const RATE_LIMIT_TEXT = new RegExp(String.raw`rate[ _-]?limit|too many requests|quota|resource[ _]exhausted|throttl|${CODE}429\b`);
const TIMEOUT_TEXT = new RegExp(String.raw`timed out|\btimeout\b|deadline exceeded|etimedout|gateway timeout|${CODE}504\b`);
const CONNECTION_TEXT = /econnreset|econnrefused|connection (?:reset|refused|error|aborted|closed)|socket hang up|network error|enotfound|eai_again/;
const SERVER_ERROR_TEXT = new RegExp(String.raw`${CODE}5\d\d\b|internal server error|server error|service unavailable|bad gateway|overloaded`);
const CLIENT_ERROR_TEXT = new RegExp(String.raw`${CODE}4\d\d\b`);

// Outcomes are shared constants: one is read for every step, and none is ever changed.
const SUCCESS: CallOutcome = Object.freeze({ kind: 'success' });
const RATE_LIMITED: CallOutcome = Object.freeze({ kind: 'rate_limited' });
const CLIENT_ERROR: CallOutcome = Object.freeze({ kind: 'client_error' });
const OTHER_ERROR: CallOutcome = Object.freeze({ kind: 'other_error' });
const FAILURES: Readonly<Record<FailureCause, CallOutcome>> = {
  timeout: Object.freeze({ kind: 'failure', cause: 'timeout' }),
  http_5xx: Object.freeze({ kind: 'failure', cause: 'http_5xx' }),
  connection: Object.freeze({ kind: 'failure', cause: 'connection' }),
};

/** What a call's status, error type, exception events and error texts say happened. */
export function classifyOutcome(span: AgentSpan): CallOutcome {
  const status = span.httpStatusCode;
  // The common case, a call that went well, decided without touching the error texts.
  if (!span.isError && span.errorType === '' && (status === 0 || (status >= 200 && status <= 399))) return SUCCESS;
  const type = squashType(span.errorType);
  const byType = typeOutcome(type);
  if (status === 429 || byType === RATE_LIMITED) return RATE_LIMITED;
  if (status >= 500 && status <= 599) return FAILURES[status === 504 ? 'timeout' : 'http_5xx'];
  if (status === 408) return FAILURES.timeout;
  if (byType !== undefined && byType !== CLIENT_ERROR) return byType;
  if (status >= 400 && status <= 499) return CLIENT_ERROR;
  if (byType !== undefined) return byType;
  if (!span.isError && type === '') return SUCCESS;
  // A generic error type ("_OTHER", "Error", no status): an exception event's type, then the texts.
  const fromException = exceptionTypeOutcome(span);
  if (fromException !== undefined) return fromException;
  const texts = errorTexts(span);
  if (texts.some((t) => RATE_LIMIT_TEXT.test(t))) return RATE_LIMITED;
  if (texts.some((t) => TIMEOUT_TEXT.test(t))) return FAILURES.timeout;
  if (texts.some((t) => CONNECTION_TEXT.test(t))) return FAILURES.connection;
  if (texts.some((t) => SERVER_ERROR_TEXT.test(t))) return FAILURES.http_5xx;
  if (texts.some((t) => CLIENT_ERROR_TEXT.test(t))) return CLIENT_ERROR;
  return span.isError ? OTHER_ERROR : SUCCESS;
}

/** The ErrorClass column's value for an outcome. */
export function errorClassOf(outcome: CallOutcome): ErrorClass {
  switch (outcome.kind) {
    case 'success':
      return 'ok';
    case 'failure':
      return 'provider_error';
    default:
      return outcome.kind;
  }
}

/** Counted in an error ratio: every error but a 429 (quota shapes traffic; it is not failure). */
export function countsAsError(outcome: CallOutcome): boolean {
  return outcome.kind !== 'success' && outcome.kind !== 'rate_limited';
}

/**
 * The provider failed a model call to a named provider (5xx, timeout, connection error): the
 * provider breakers record it as a failure, and a tenant's or run's errorRatio does not count it.
 */
export function isProviderAttributed(outcome: CallOutcome, modelCall: boolean, provider: string): boolean {
  return outcome.kind === 'failure' && modelCall && provider !== '';
}

/** Counted in a tenant's or run's errorRatio: the tenant's own errors, never a 429 or a provider-attributed failure. */
export function countsAsTenantError(outcome: CallOutcome, modelCall: boolean, provider: string): boolean {
  return countsAsError(outcome) && !isProviderAttributed(outcome, modelCall, provider);
}

function typeOutcome(type: string): CallOutcome | undefined {
  if (type === '') return undefined;
  if (RATE_LIMIT_TYPES.has(type)) return RATE_LIMITED;
  if (/^5\d\d$/.test(type)) return FAILURES[type === '504' ? 'timeout' : 'http_5xx'];
  if (TIMEOUT_TYPES.has(type)) return FAILURES.timeout;
  if (CONNECTION_TYPES.has(type)) return FAILURES.connection;
  if (SERVER_ERROR_TYPES.has(type)) return FAILURES.http_5xx;
  if (/^4\d\d$/.test(type)) return type === '408' ? FAILURES.timeout : CLIENT_ERROR;
  if (CLIENT_ERROR_TYPES.has(type)) return CLIENT_ERROR;
  return undefined;
}

/** The first exception type (an event's, else the span's `exception.type`) the table knows. */
function exceptionTypeOutcome(span: AgentSpan): CallOutcome | undefined {
  for (const event of span.events) {
    if (event.name !== 'exception') continue;
    const outcome = typeOutcome(squashType(attributeText(event.attributes, 'exception.type')));
    if (outcome !== undefined) return outcome;
  }
  return typeOutcome(squashType(attributeText(span.spanAttributes, 'exception.type')));
}

function attributeText(attributes: readonly KeyValue[], key: string): string {
  for (const attribute of attributes) if (attribute.key === key) return textOf(attribute.value);
  return '';
}

/** Lower-cased letters and digits of the part after the last '.'. */
export function squashType(text: string): string {
  const dot = text.lastIndexOf('.');
  return (dot >= 0 && dot < text.length - 1 ? text.slice(dot + 1) : text).toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Longest error text read from one attribute: classification needs the first words, not a whole body. */
const MAX_TEXT = 2_048;

/** Attributes that carry error bodies, messages and codes in the instrumentations seen in the wild. */
export const ERROR_TEXT_KEYS: ReadonlySet<string> = new Set([
  'error.message',
  'error.code',
  'error.body',
  'error.type',
  'gen_ai.error.code',
  'gen_ai.error.type',
  'gen_ai.error.message',
  'exception.message',
  'exception.type',
  'http.response.body',
  'http.response.body.content',
  'llm.error',
  'otel.status_description',
]);

/** Every error text the span carries (lower-cased, each cut to 2 KB): status, error attributes, exception events. */
export function errorTexts(span: AgentSpan): string[] {
  const texts: string[] = [];
  const add = (s: string) => {
    if (s !== '') texts.push(s.slice(0, MAX_TEXT).toLowerCase());
  };
  add(span.errorType);
  add(span.statusMessage);
  readErrorAttributes(span.spanAttributes, add);
  for (const event of span.events) {
    if (event.name === 'exception' || event.name.includes('error')) readErrorAttributes(event.attributes, add);
  }
  return texts;
}

function readErrorAttributes(attributes: readonly KeyValue[], add: (s: string) => void): void {
  for (const { key, value } of attributes) {
    if (ERROR_TEXT_KEYS.has(key) || (key.endsWith('.error') && typeof value === 'string')) add(textOf(value));
  }
}

export function textOf(value: AnyValue | undefined): string {
  const v = Array.isArray(value) ? value[0] : value;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return '';
}
