import { describe, expect, it } from 'vitest';
import { classifyOutcome, classifyRateLimit, type RateLimitKind } from '../../src/degradation/classify.js';
import { durationMs } from '../../src/degradation/span-signals.js';
import { limited, span, T0, type SpanInit } from './helpers.js';

describe('classifyRateLimit: the 429 table', () => {
  const cases: { name: string; init: SpanInit; kind: RateLimitKind; billing?: boolean; resetMs: number }[] = [
    {
      name: 'OpenAI TPM message',
      init: { attrs: { 'error.message': 'Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29800, Requested 900.' }, retryAfterMs: 1_800 },
      kind: 'token_rate',
      resetMs: 1_800,
    },
    {
      name: 'OpenAI RPM message',
      init: { attrs: { 'error.message': 'Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1.' }, retryAfterMs: 120 },
      kind: 'request_rate',
      resetMs: 120,
    },
    {
      name: 'OpenAI daily tokens (TPD) is daily, not token rate',
      init: { attrs: { 'error.message': 'Rate limit reached for gpt-4o on tokens per day (TPD): Limit 90000, Used 90000.' }, retryAfterMs: 3_000_000 },
      kind: 'daily',
      resetMs: 3_000_000,
    },
    {
      name: 'OpenAI insufficient_quota (billing) as error.type',
      init: { errorType: 'insufficient_quota' },
      kind: 'daily',
      billing: true,
      resetMs: -1,
    },
    {
      name: 'insufficient_quota as gen_ai.error.code',
      init: { attrs: { 'gen_ai.error.code': 'insufficient_quota', 'error.message': 'You exceeded your current quota, please check your plan and billing details.' } },
      kind: 'daily',
      billing: true,
      resetMs: -1,
    },
    {
      name: "OpenAI's error type 'tokens'",
      init: { errorType: 'tokens', attrs: { 'gen_ai.error.code': 'rate_limit_exceeded' } },
      kind: 'token_rate',
      resetMs: -1,
    },
    {
      name: "OpenAI's error type 'requests' with a reset header",
      init: { errorType: 'requests', attrs: { 'http.response.header.x-ratelimit-reset-requests': '1m30s' } },
      kind: 'request_rate',
      resetMs: 90_000,
    },
    {
      name: 'Anthropic input tokens per minute',
      init: {
        errorType: 'rate_limit_error',
        attrs: {
          'exception.message': 'This request would exceed the rate limit for your organization of 40,000 input tokens per minute.',
          'anthropic-ratelimit-tokens-reset': new Date(T0 + 20_000).toISOString(),
        },
      },
      kind: 'token_rate',
      resetMs: 20_000,
    },
    {
      name: 'Azure token rate limit with retry-after',
      init: { statusMessage: 'Requests to the ChatCompletions_Create Operation have exceeded token rate limit of your current pricing tier.', retryAfterMs: 7_000 },
      kind: 'token_rate',
      resetMs: 7_000,
    },
    {
      name: 'Azure call rate limit',
      init: { statusMessage: 'Requests have exceeded call rate limit of your current pricing tier.', retryAfterMs: 2_000 },
      kind: 'request_rate',
      resetMs: 2_000,
    },
    {
      name: 'Vertex RESOURCE_EXHAUSTED per day',
      init: { errorType: 'RESOURCE_EXHAUSTED', httpStatusCode: 0, attrs: { 'error.message': "Quota exceeded for quota metric 'Generate Content API requests per day'" } },
      kind: 'daily',
      resetMs: -1,
    },
    {
      name: 'Bedrock too many tokens',
      init: { errorType: 'ThrottlingException', httpStatusCode: 0, attrs: { 'error.message': 'Too many tokens, please wait before trying again.' } },
      kind: 'token_rate',
      resetMs: -1,
    },
    {
      name: 'headers only: no requests left',
      init: { rateLimitRemainingRequests: 0, rateLimitRemainingTokens: 5_000, attrs: { 'x-ratelimit-reset-requests': '20ms' } },
      kind: 'request_rate',
      resetMs: 20,
    },
    {
      name: 'headers only: no tokens left',
      init: { rateLimitRemainingRequests: 12, rateLimitRemainingTokens: 0, attrs: { 'x-ratelimit-reset-tokens': '6m0s' } },
      kind: 'token_rate',
      resetMs: 360_000,
    },
    {
      name: 'a retry-after of hours means a daily quota',
      init: { retryAfterMs: 4 * 3_600_000 },
      kind: 'daily',
      resetMs: 4 * 3_600_000,
    },
    {
      name: 'a bare 429 is a request-rate limit by default',
      init: { errorType: '429', statusMessage: 'Too Many Requests' },
      kind: 'request_rate',
      resetMs: -1,
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const s = limited({ endMs: T0, ...c.init });
      expect(classifyOutcome(s).kind).toBe('rate_limited');
      const cls = classifyRateLimit(s, T0);
      expect(cls.kind).toBe(c.kind);
      expect(cls.billing).toBe(c.billing ?? false);
      expect(cls.resetMs).toBe(c.resetMs);
      expect(cls.evidence).not.toBe('');
    });
  }

  it('reads error texts from exception events', () => {
    const s = limited({
      attrs: {},
      errorType: 'RateLimitError',
      events: [{ name: 'exception', timeUnixNano: 0n, droppedAttributesCount: 0, attributes: [{ key: 'exception.message', value: 'on tokens per min (TPM)' }] }],
    });
    expect(classifyRateLimit(s, T0).kind).toBe('token_rate');
  });
});

describe('classifyOutcome: 429 is not 5xx', () => {
  const cases: { name: string; init: SpanInit; expected: ReturnType<typeof classifyOutcome> }[] = [
    { name: 'a 200', init: {}, expected: { kind: 'success' } },
    { name: 'a 429', init: { httpStatusCode: 429, isError: true }, expected: { kind: 'rate_limited' } },
    { name: 'a 429 named only by error.type', init: { httpStatusCode: 0, errorType: 'RateLimitError', isError: true }, expected: { kind: 'rate_limited' } },
    { name: 'a 500', init: { httpStatusCode: 500, isError: true }, expected: { kind: 'failure', cause: 'http_5xx' } },
    { name: "Anthropic's 529 overloaded", init: { httpStatusCode: 529, errorType: 'overloaded_error', isError: true }, expected: { kind: 'failure', cause: 'http_5xx' } },
    { name: 'a 504', init: { httpStatusCode: 504, isError: true }, expected: { kind: 'failure', cause: 'timeout' } },
    { name: 'a 5xx as error.type', init: { httpStatusCode: 0, errorType: '502', isError: true }, expected: { kind: 'failure', cause: 'http_5xx' } },
    { name: 'error.type timeout', init: { httpStatusCode: 0, errorType: 'timeout', isError: true }, expected: { kind: 'failure', cause: 'timeout' } },
    { name: 'APITimeoutError', init: { httpStatusCode: 0, errorType: 'APITimeoutError', isError: true }, expected: { kind: 'failure', cause: 'timeout' } },
    { name: 'connection_error', init: { httpStatusCode: 0, errorType: 'connection_error', isError: true }, expected: { kind: 'failure', cause: 'connection' } },
    { name: 'ECONNRESET', init: { httpStatusCode: 0, errorType: 'ECONNRESET', isError: true }, expected: { kind: 'failure', cause: 'connection' } },
    { name: 'a generic error whose message says it timed out', init: { httpStatusCode: 0, errorType: 'Error', isError: true, statusMessage: 'Request timed out.' }, expected: { kind: 'failure', cause: 'timeout' } },
    { name: 'a 400', init: { httpStatusCode: 400, errorType: 'invalid_request_error', isError: true }, expected: { kind: 'client_error' } },
    { name: 'a 408', init: { httpStatusCode: 408, isError: true }, expected: { kind: 'failure', cause: 'timeout' } },
    { name: "the agent's own error", init: { httpStatusCode: 0, errorType: 'ValueError', isError: true, statusMessage: 'bad JSON in tool output' }, expected: { kind: 'other_error' } },
  ];
  for (const c of cases) {
    it(c.name, () => expect(classifyOutcome(span({ errorType: '', ...c.init }))).toEqual(c.expected));
  }
});

describe('durationMs (OpenAI reset headers)', () => {
  it.each([
    ['1s', 1_000],
    ['6m0s', 360_000],
    ['20ms', 20],
    ['1h2m3.5s', 3_723_500],
    ['0.5', 500],
    ['soon', -1],
    ['', -1],
  ])('%s → %d ms', (text, ms) => expect(durationMs(text)).toBe(ms));
});
