import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RunMetric } from '../../src/windows/metric-names.js';
import { makeStore, span, T0 } from './helpers.js';

const SUMMED: RunMetric[] = ['toolCallsPerMinute', 'modelCallsPerMinute', 'stepCount'];
/** velocities are divided per run before summing; run rings keep cost in Float32 */
const SUMMED_APPROX: RunMetric[] = ['tokenVelocity10s', 'tokenVelocity60s', 'costPerMinuteUsd', 'costUsd'];

function expectClose(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(expected)));
}

describe('WindowStore tenant metrics', () => {
  it('sums rates and steps, takes the max depth and the longest run', () => {
    const { store } = makeStore();
    store.record(span({ runId: 'a', endMs: T0 - 8_000, durationMs: 2_000, inputTokens: 100 }));
    store.record(span({ runId: 'a', operation: 'execute_tool', depth: 1 }));
    store.record(span({ runId: 'b', endMs: T0, durationMs: 4_000, outputTokens: 300, depth: 3 }));
    store.record(span({ tenantId: 't2', runId: 'a', inputTokens: 5_000 }));
    const m = store.tenantMetrics('t1')!;
    expect(m.tokenVelocity10s).toBe(40);
    expect(m.modelCallsPerMinute).toBe(2);
    expect(m.toolCallsPerMinute).toBe(1);
    expect(m.stepCount).toBe(3);
    expect(m.subAgentDepth).toBe(3);
    expect(m.durationSeconds).toBe(10); // run a: T0-10 s .. T0
    expect([...store.tenants()].sort()).toEqual(['t1', 't2']);
    expect(store.activeRuns('t1').sort()).toEqual(['a', 'b']);
  });

  it('applies the error ratio to the tenant\'s own calls', () => {
    const { store } = makeStore();
    store.record(span({ runId: 'a', isError: true }));
    store.record(span({ runId: 'b', isError: true }));
    store.record(span({ runId: 'c' }));
    expect(store.tenantMetrics('t1')!.errorRatio).toBeCloseTo(2 / 3, 12);
    expect(store.runMetrics('t1', 'a')!.errorRatio).toBe(0); // each run is below minCalls
  });

  it("leaves the provider's failures to the provider breakers and counts the tenant's own errors", () => {
    const { store } = makeStore({ providerErrorRatio: { minCalls: 3, lastN: 5 } });
    const storm = { provider: 'openai', httpStatusCode: 503, isError: true, errorType: '503' };
    for (let i = 0; i < 6; i++) store.record(span({ runId: 'a', ...storm }));
    store.record(span({ runId: 'a', provider: 'openai', errorType: 'APITimeoutError', isError: true }));
    expect(store.tenantMetrics('t1')!.errorRatio).toBe(0);
    expect(store.runMetrics('t1', 'a')!.errorRatio).toBe(0);
    expect(store.providerMetrics('openai')!.errorRatio).toBe(1);
    // the tenant's own: a 400, a tool's error, and a 5xx of a call no provider breaker sees (no provider named)
    store.record(span({ runId: 'a', provider: 'openai', httpStatusCode: 400, isError: true, errorType: 'invalid_request_error' }));
    store.record(span({ runId: 'a', operation: 'execute_tool', httpStatusCode: 503, isError: true }));
    store.record(span({ runId: 'a', httpStatusCode: 503, isError: true }));
    // the last 5 steps hold the three
    expect(store.tenantMetrics('t1')!.errorRatio).toBeCloseTo(3 / 5, 12);
    expect(store.runMetrics('t1', 'a')!.errorRatio).toBeCloseTo(3 / 5, 12);
  });

  it('equals the sum (or max) over its runs for random traffic (fast-check)', () => {
    const spanArb = fc.record({
      runId: fc.constantFrom('r0', 'r1', 'r2', 'r3'),
      operation: fc.constantFrom('chat', 'embeddings', 'execute_tool', 'invoke_agent', ''),
      endOffsetMs: fc.integer({ min: -80_000, max: 12_000 }),
      durationMs: fc.integer({ min: 0, max: 30_000 }),
      inputTokens: fc.nat({ max: 5_000 }),
      outputTokens: fc.nat({ max: 5_000 }),
      model: fc.constantFrom('gpt-4o', 'gpt-4o-mini', 'unknown'),
      isError: fc.boolean(),
      depth: fc.integer({ min: -1, max: 3 }),
      clockStepMs: fc.integer({ min: 0, max: 3_000 }),
    });
    fc.assert(
      fc.property(fc.array(spanArb, { maxLength: 120 }), fc.integer({ min: 0, max: 70_000 }), (spans, readAfterMs) => {
        const { store, clock } = makeStore();
        for (const s of spans) {
          clock.advance(s.clockStepMs);
          store.record(
            span({
              runId: s.runId,
              operation: s.operation,
              endMs: clock.ms + s.endOffsetMs,
              durationMs: s.durationMs,
              inputTokens: s.inputTokens,
              outputTokens: s.outputTokens,
              requestModel: s.model,
              isError: s.isError,
              depth: s.depth,
            }),
          );
        }
        clock.advance(readAfterMs);
        const tenant = store.tenantMetrics('t1');
        if (spans.length === 0) {
          expect(tenant).toBeUndefined();
          return;
        }
        const runs = store.activeRuns('t1').map((r) => store.runMetrics('t1', r)!);
        for (const k of SUMMED) expect(tenant![k]).toBe(runs.reduce((a, r) => a + r[k], 0));
        for (const k of SUMMED_APPROX) expectClose(tenant![k], runs.reduce((a, r) => a + r[k], 0));
        expect(tenant!.subAgentDepth).toBe(Math.max(...runs.map((r) => r.subAgentDepth)));
        expect(tenant!.durationSeconds).toBe(Math.max(...runs.map((r) => r.durationSeconds)));
      }),
    );
  });

  it('drops an evicted run from stepCount, costUsd and the maxima, but keeps its recent rates', () => {
    const { store } = makeStore({ maxRuns: 2, runQuietMs: 0 });
    store.record(span({ runId: 'a', durationMs: 9_000, requestModel: 'gpt-4o', inputTokens: 1_000_000, depth: 4 }));
    store.record(span({ runId: 'b', durationMs: 1_000 }));
    store.record(span({ runId: 'c', durationMs: 2_000, operation: 'execute_tool' })); // evicts a (cap)
    const m = store.tenantMetrics('t1')!;
    expect(store.activeRuns('t1').sort()).toEqual(['b', 'c']);
    expect(m.stepCount).toBe(2);
    expect(m.costUsd).toBe(0);
    expect(m.subAgentDepth).toBe(0);
    expect(m.durationSeconds).toBe(2);
    expect(m.modelCallsPerMinute).toBe(2); // a's call still counts toward the tenant's rate
    expect(m.costPerMinuteUsd).toBeCloseTo(2.5, 12);
  });
});
