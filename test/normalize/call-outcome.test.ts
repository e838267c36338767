// One table of error spellings, fed to the consumers of the classifier: the live windows (the
// tenant's errorRatio, the provider's error ratio), the degradation engine (provider breakers, 429
// throttles) and the stored ErrorClass column. Each must read every case as the table says.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/audit-log.js';
import type { OtlpEvent } from '../../src/codecs/otlp-model.js';
import type { AgentSpan } from '../../src/contracts/agent-span.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import { DegradationEngine } from '../../src/degradation/degradation-engine.js';
import { classifyOutcome, errorClassOf, type ErrorClass } from '../../src/normalize/call-outcome.js';
import type { Store } from '../../src/storage/clickhouse.js';
import { spanRow } from '../../src/storage/span-rows.js';
import { WindowStore } from '../../src/windows/window-store.js';
import { openAuditLog } from '../helpers/audit.js';
import { Clock, openTestStore, section, span, T0, type SpanInit } from '../degradation/helpers.js';

function exception(type: string, message: string): OtlpEvent {
  return {
    name: 'exception',
    timeUnixNano: 0n,
    droppedAttributesCount: 0,
    attributes: [
      { key: 'exception.type', value: type },
      { key: 'exception.message', value: message },
    ],
  };
}

/** status ERROR, no error.type (normalize writes `_OTHER`), no HTTP status: Python OpenInference's shape */
const bare: SpanInit = { httpStatusCode: 0, statusCode: 2, isError: true, errorType: '_OTHER' };

const CASES: { name: string; init: SpanInit; expected: ErrorClass }[] = [
  { name: 'a 200', init: {}, expected: 'ok' },
  { name: 'no status code at all', init: { httpStatusCode: 0 }, expected: 'ok' },
  { name: 'a 429', init: { httpStatusCode: 429, isError: true, errorType: '429' }, expected: 'rate_limited' },
  { name: 'error.type RateLimitError, no status', init: { httpStatusCode: 0, isError: true, errorType: 'RateLimitError' }, expected: 'rate_limited' },
  { name: 'error.type openai.RateLimitError, no status', init: { httpStatusCode: 0, isError: true, errorType: 'openai.RateLimitError' }, expected: 'rate_limited' },
  { name: 'error.type ThrottlingException (Bedrock)', init: { httpStatusCode: 0, isError: true, errorType: 'ThrottlingException' }, expected: 'rate_limited' },
  { name: 'error.type rate_limit_exceeded', init: { httpStatusCode: 0, isError: true, errorType: 'rate_limit_exceeded' }, expected: 'rate_limited' },
  { name: 'an exception event of type RateLimitError', init: { ...bare, events: [exception('RateLimitError', 'slow down')] }, expected: 'rate_limited' },
  { name: 'a status text "Error code: 429"', init: { ...bare, statusMessage: "Error code: 429 - {'error': {'code': 'x'}}" }, expected: 'rate_limited' },
  { name: 'only an HTTP 503 status', init: { httpStatusCode: 503 }, expected: 'provider_error' },
  { name: 'a 500 with error.type 500', init: { httpStatusCode: 500, isError: true, errorType: '500' }, expected: 'provider_error' },
  { name: 'a 504 (timeout)', init: { httpStatusCode: 504, isError: true, errorType: '504' }, expected: 'provider_error' },
  { name: 'an exception saying Error code: 503', init: { ...bare, events: [exception('APIStatusError', 'Error code: 503 - unavailable')] }, expected: 'provider_error' },
  { name: 'an exception saying overloaded', init: { ...bare, events: [exception('APIStatusError', "{'type': 'overloaded_error', 'message': 'Overloaded'}")] }, expected: 'provider_error' },
  { name: 'an exception saying Error code: 529', init: { ...bare, events: [exception('Error', 'Error code: 529')] }, expected: 'provider_error' },
  { name: 'an exception of type InternalServerError', init: { ...bare, events: [exception('openai.InternalServerError', 'boom')] }, expected: 'provider_error' },
  { name: 'error.type APITimeoutError', init: { httpStatusCode: 0, isError: true, errorType: 'APITimeoutError' }, expected: 'provider_error' },
  { name: 'error.type ECONNRESET', init: { httpStatusCode: 0, isError: true, errorType: 'ECONNRESET' }, expected: 'provider_error' },
  { name: 'a 400 invalid_request_error', init: { httpStatusCode: 400, isError: true, errorType: 'invalid_request_error' }, expected: 'client_error' },
  { name: 'only an HTTP 404 status', init: { httpStatusCode: 404 }, expected: 'client_error' },
  { name: 'an exception of type BadRequestError', init: { ...bare, events: [exception('BadRequestError', 'Error code: 400 - bad')] }, expected: 'client_error' },
  { name: "the agent's own ValueError", init: { httpStatusCode: 0, isError: true, errorType: 'ValueError', statusMessage: 'bad JSON in tool output' }, expected: 'other_error' },
  { name: 'status ERROR and nothing else', init: bare, expected: 'other_error' },
];

let store: Store;
let closeStore: () => Promise<void>;
let audit: AuditLog;

beforeAll(async () => {
  ({ store, close: closeStore } = await openTestStore('bw-outcome-'));
  audit = await openAuditLog(store.client);
});

afterAll(async () => {
  await closeStore?.();
});

/** What the windows make of one call: does it count in the tenant's and in the provider's error ratio? */
function windowsRead(s: AgentSpan): { tenantError: boolean; providerError: boolean } {
  const windows = new WindowStore({ now: () => T0, errorRatio: () => ({ minCalls: 1, lastN: 5 }), providerErrorRatio: { minCalls: 1, lastN: 5 } });
  windows.record(s);
  return { tenantError: windows.tenantMetrics(s.tenantId)!.errorRatio === 1, providerError: windows.providerMetrics(s.provider)!.errorRatio === 1 };
}

/** What degradation makes of it: a call its provider breaker counts, a failure there, a 429 throttle. */
function degradationRead(s: AgentSpan): { healthCalls: number; failures: number; throttled: boolean } {
  const clock = new Clock();
  const engine = new DegradationEngine({
    bus: new DecisionBus({ now: clock.now }),
    audit,
    policy: () => section({ providerHealth: { minimumCalls: 5 }, defaults: { tiers: [{ tier: 0, provider: 'openai', model: 'gpt-4o' }] } }),
    now: clock.now,
    newId: () => 'req',
  });
  engine.observe([s], 0);
  // A fresh engine: the provider's shared breaker holds this one call, if it counted it.
  const shared = engine.providerBreakers().find((b) => b.key.scope === 'PROVIDER');
  return { healthCalls: shared?.rates.calls ?? 0, failures: shared?.rates.failures ?? 0, throttled: engine.status(s.tenantId).throttles.length > 0 };
}

describe('one classifier, read alike by the windows and by degradation', () => {
  CASES.forEach((c, i) => {
    it(`${c.name}: ${c.expected}`, () => {
      const s = span({ tenantId: `t${i}`, ...c.init });
      expect(errorClassOf(classifyOutcome(s))).toBe(c.expected);
      // the column the rollup, the dashboards and the alerts count
      expect(spanRow(s, 0).ErrorClass).toBe(c.expected);

      const w = windowsRead(s);
      const d = degradationRead(s);
      expect({ ...w, ...d }).toEqual({
        // a 429 never counts in a tenant's error ratio, nor a failure the provider breakers own; every other error does
        tenantError: c.expected === 'client_error' || c.expected === 'other_error',
        // the provider's error ratio and its breaker count the same calls: its failures
        providerError: c.expected === 'provider_error',
        failures: c.expected === 'provider_error' ? 1 : 0,
        // the breaker counts the calls that say something about the provider's health
        healthCalls: c.expected === 'ok' || c.expected === 'client_error' || c.expected === 'provider_error' ? 1 : 0,
        throttled: c.expected === 'rate_limited',
      });
    });
  });
});
