import { describe, expect, it } from 'vitest';
import { PROVIDER_KEY_ATTRIBUTES, readSpanExtras, resetHeaders } from '../../src/degradation/span-signals.js';
import type { AnyValue } from '../../src/codecs/otlp-model.js';
import { blankAgentSpan } from '../helpers/agent-span.js';

const spanWith = (attributes: Record<string, AnyValue>) =>
  blankAgentSpan({ provider: 'openai', spanAttributes: Object.entries(attributes).map(([key, value]) => ({ key, value })) });

describe('readSpanExtras', () => {
  it('reads every provider key spelling, the first-ranked one winning whatever the attribute order', () => {
    for (const key of PROVIDER_KEY_ATTRIBUTES) expect(readSpanExtras(spanWith({ [key]: `via ${key}` }), 'breakwater.task').providerKey).toBe(`via ${key}`);
    const all = Object.fromEntries([...PROVIDER_KEY_ATTRIBUTES].reverse().map((key) => [key, `via ${key}`]));
    expect(readSpanExtras(spanWith(all), 'breakwater.task').providerKey).toBe(`via ${PROVIDER_KEY_ATTRIBUTES[0]}`);
    expect(readSpanExtras(spanWith({ 'gen_ai.provider.key': '' }), 'breakwater.task').providerKey).toBe('openai');
  });

  it('reads the pre-flight estimate and the reserved flag', () => {
    const extras = readSpanExtras(spanWith({ 'breakwater.preflight.tokens': 1234.6, 'breakwater.preflight.reserved': true }), 'breakwater.task');
    expect(extras).toMatchObject({ preflightTokens: 1235, preflightReserved: true, providerKey: 'openai', task: '' });
    expect(readSpanExtras(spanWith({ 'breakwater.preflight.reserved': 'true' }), 'breakwater.task').preflightReserved).toBe(true);
  });

  it('ignores keys of the same lengths as the ones it reads', () => {
    // 12, 19, 23, 27 and 29 characters, like provider.key, gen_ai.provider.key, breakwater.provider.key and the two pre-flight keys.
    const lookalikes = { 'agent.run.id': 'r', 'gen_ai.provider.kez': 'x', 'breakwater.provider.kez': 'x', 'breakwater.preflight.tokenz': 5, 'breakwater.preflight.reservez': true };
    expect(readSpanExtras(spanWith(lookalikes), 'breakwater.task')).toEqual({ providerKey: 'openai', task: '', preflightTokens: -1, preflightReserved: false });
  });

  it('reads a task attribute of any length, including one spelled like another extra', () => {
    const long = 'com.example.platform.workload.task.name';
    expect(readSpanExtras(spanWith({ [long]: 'summarize' }), long).task).toBe('summarize');
    expect(readSpanExtras(spanWith({ t: 'short' }), 't').task).toBe('short');
    expect(readSpanExtras(spanWith({ 'provider.key': 'as task' }), 'provider.key')).toMatchObject({ task: 'as task', providerKey: 'openai' });
  });
});

describe('resetHeaders', () => {
  it('reads the reset headers with either separator, bare or as semconv string arrays', () => {
    const span = spanWith({ 'http.response.header.x_ratelimit_reset_requests': ['1m30s'], x_ratelimit_reset_tokens: '20ms' });
    expect(resetHeaders(span, 0)).toEqual({ requestsResetMs: 90_000, tokensResetMs: 20 });
    expect(resetHeaders(spanWith({ 'http.response.header.x-ratelimit-reset-tokens': ['6m0s'] }), 0).tokensResetMs).toBe(360_000);
  });
});
