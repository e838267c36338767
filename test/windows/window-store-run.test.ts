import { describe, expect, it } from 'vitest';
import { makeStore, span, T0 } from './helpers.js';

const S = T0; // clock start; its epoch second is the window time W unless a span is newer

describe('WindowStore run metrics', () => {
  it('token velocity counts the last 10 s and 60 s exactly at the edges', () => {
    const { store } = makeStore();
    store.record(span({ endMs: S - 9_000, inputTokens: 60, outputTokens: 40 })); // W-9: both windows
    store.record(span({ endMs: S - 10_000, inputTokens: 200 })); // W-10: 60 s only
    store.record(span({ endMs: S - 59_000, outputTokens: 400 })); // W-59: 60 s only
    store.record(span({ endMs: S - 60_000, inputTokens: 800 })); // W-60: late
    const m = store.runMetrics('t1', 'r1')!;
    expect(m.tokenVelocity10s).toBe(100 / 10);
    expect(m.tokenVelocity60s).toBe(700 / 60);
    expect(m.modelCallsPerMinute).toBe(3);
    expect(m.stepCount).toBe(4); // the late span still counts as a step
  });

  it('attributes tokens at the end time and rolls buckets over as the clock moves', () => {
    const { store, clock } = makeStore();
    store.record(span({ endMs: S, durationMs: 30_000, inputTokens: 50 }));
    clock.advance(9_999); // W = S + 9: still inside the 10 s window
    expect(store.runMetrics('t1', 'r1')!.tokenVelocity10s).toBe(5);
    clock.advance(1); // W = S + 10
    expect(store.runMetrics('t1', 'r1')!.tokenVelocity10s).toBe(0);
    expect(store.runMetrics('t1', 'r1')!.tokenVelocity60s).toBeCloseTo(50 / 60, 12);
    clock.set(S + 59_999);
    expect(store.runMetrics('t1', 'r1')!.tokenVelocity60s).toBeCloseTo(50 / 60, 12);
    clock.set(S + 60_000);
    expect(store.runMetrics('t1', 'r1')!.tokenVelocity60s).toBe(0);
    // the bucket of S is reused for S + 60, starting from zero
    store.record(span({ endMs: S + 60_000, inputTokens: 7 }));
    expect(store.runMetrics('t1', 'r1')!.tokenVelocity60s).toBeCloseTo(7 / 60, 12);
    expect(store.runDetails('t1', 'r1')!.inputTokens).toBe(57);
  });

  it('counts tool calls and model calls per minute; other spans are not steps', () => {
    const { store } = makeStore();
    for (const operation of ['chat', 'generate_content', 'text_completion', 'embeddings']) {
      store.record(span({ operation }));
    }
    store.record(span({ operation: 'execute_tool' }));
    store.record(span({ operation: 'execute_tool' }));
    store.record(span({ operation: 'invoke_agent' }));
    store.record(span({ operation: '' }));
    const m = store.runMetrics('t1', 'r1')!;
    expect(m.modelCallsPerMinute).toBe(4);
    expect(m.toolCallsPerMinute).toBe(2);
    expect(m.stepCount).toBe(6);
  });

  it('ignores the token roll-up on invoke_agent spans', () => {
    const { store } = makeStore();
    store.record(span({ operation: 'chat', requestModel: 'gpt-4o', inputTokens: 100 }));
    store.record(span({ operation: 'invoke_agent', requestModel: 'gpt-4o', inputTokens: 100 }));
    const m = store.runMetrics('t1', 'r1')!;
    expect(m.tokenVelocity60s).toBeCloseTo(100 / 60, 12);
    expect(m.costUsd).toBeCloseTo((100 * 2.5) / 1e6, 15);
  });

  it('counts spans arriving out of order inside the window in their own second', () => {
    const { store } = makeStore();
    store.record(span({ endMs: S, inputTokens: 1 }));
    store.record(span({ endMs: S - 30_000, inputTokens: 2 })); // arrives later, ended earlier
    store.record(span({ endMs: S - 5_000, inputTokens: 4 }));
    const m = store.runMetrics('t1', 'r1')!;
    expect(m.tokenVelocity10s).toBe(5 / 10);
    expect(m.tokenVelocity60s).toBe(7 / 60);
  });

  it('late spans count in cumulative figures only', () => {
    const { store } = makeStore();
    store.record(span({ endMs: S, durationMs: 1_000, operation: 'execute_tool' }));
    store.record(
      span({
        endMs: S - 60_000,
        durationMs: 5_000,
        requestModel: 'gpt-4o',
        inputTokens: 1_000_000,
        isError: true,
        depth: 2,
      }),
    );
    const m = store.runMetrics('t1', 'r1')!;
    expect(m.stepCount).toBe(2);
    expect(m.costUsd).toBeCloseTo(2.5, 12);
    expect(m.durationSeconds).toBe(65);
    expect(m.subAgentDepth).toBe(2);
    expect(m.tokenVelocity60s).toBe(0);
    expect(m.costPerMinuteUsd).toBe(0);
    expect(m.modelCallsPerMinute).toBe(0);
    expect(m.toolCallsPerMinute).toBe(1);
    expect(m.errorRatio).toBe(0); // the late error is in neither error window
  });

  it('judges lateness against the newest span time when it is ahead of the clock', () => {
    const { store } = makeStore();
    store.record(span({ runId: 'a', endMs: S + 3_000 })); // 3 s ahead: kept, W = S + 3
    expect(store.windowSecond()).toBe(S / 1000 + 3);
    store.record(span({ endMs: S - 57_000, inputTokens: 10 })); // = W - 60: late
    store.record(span({ endMs: S - 56_000, inputTokens: 20 })); // W - 59: in
    expect(store.runMetrics('t1', 'r1')!.tokenVelocity60s).toBe(20 / 60);
  });

  it('clamps spans ending more than 5 s in the future to now', () => {
    const { store, clock } = makeStore();
    store.record(span({ endMs: S + 10_000, durationMs: 11_000, inputTokens: 30 }));
    expect(store.windowSecond()).toBe(S / 1000); // W did not jump ahead
    let m = store.runMetrics('t1', 'r1')!;
    expect(m.tokenVelocity10s).toBe(3);
    expect(m.durationSeconds).toBe(1); // start S - 1 s, end clamped to S
    clock.advance(10_000);
    m = store.runMetrics('t1', 'r1')!;
    expect(m.tokenVelocity10s).toBe(0); // bucketed at S, not S + 10
    expect(m.tokenVelocity60s).toBe(30 / 60);
  });

  it('keeps spans up to 5 s in the future at their own time', () => {
    const { store } = makeStore();
    store.record(span({ endMs: S + 5_000, inputTokens: 10 }));
    expect(store.windowSecond()).toBe(S / 1000 + 5);
    expect(store.runDetails('t1', 'r1')!.endedAtMs).toBe(S + 5_000);
    expect(store.runMetrics('t1', 'r1')!.tokenVelocity10s).toBe(1);
  });

  it('durationSeconds spans the earliest start to the latest end', () => {
    const { store } = makeStore();
    store.record(span({ endMs: S - 4_000, durationMs: 1_000 }));
    store.record(span({ endMs: S, durationMs: 2_000 }));
    store.record(span({ endMs: S - 1_000, durationMs: 500 }));
    expect(store.runMetrics('t1', 'r1')!.durationSeconds).toBe(5);
    const d = store.runDetails('t1', 'r1')!;
    expect([d.startedAtMs, d.endedAtMs]).toEqual([S - 5_000, S]);
  });

  describe('cost', () => {
    it('prices responseModel, its undated family, else requestModel; unknown models cost 0', () => {
      const { store } = makeStore();
      const tokens = { inputTokens: 1_000, outputTokens: 2_000 };
      store.record(span({ runId: 'a', requestModel: 'gpt-4o', responseModel: 'gpt-4o-mini', ...tokens }));
      store.record(span({ runId: 'b', requestModel: 'gpt-4o', ...tokens }));
      store.record(span({ runId: 'c', requestModel: 'gpt-4o', responseModel: 'gpt-4o-mini-2024-07-18', ...tokens }));
      store.record(span({ runId: 'e', requestModel: 'gpt-4o', responseModel: 'gpt-4o-custom', ...tokens }));
      store.record(span({ runId: 'd', requestModel: 'constructor', ...tokens })); // not Object.prototype
      store.record(span({ runId: 'f', requestModel: 'unknown-model', responseModel: 'unknown-model-2024-07-18', ...tokens }));
      const mini = (1_000 * 0.15 + 2_000 * 0.6) / 1e6;
      const full = (1_000 * 2.5 + 2_000 * 10) / 1e6;
      expect(store.runMetrics('t1', 'a')!.costUsd).toBeCloseTo(mini, 15);
      expect(store.runMetrics('t1', 'b')!.costUsd).toBeCloseTo(full, 15);
      expect(store.runMetrics('t1', 'c')!.costUsd).toBeCloseTo(mini, 15); // the dated response model's family
      expect(store.runMetrics('t1', 'e')!.costUsd).toBeCloseTo(full, 15); // the response model is unpriced: the request model's
      expect(store.runMetrics('t1', 'd')!.costUsd).toBe(0);
      expect(store.runMetrics('t1', 'f')!.costUsd).toBe(0);
    });

    it('costPerMinuteUsd covers the last 60 s, costUsd everything', () => {
      const { store, clock } = makeStore();
      store.record(span({ endMs: S - 30_000, requestModel: 'gpt-4o', inputTokens: 400_000 })); // $1
      store.record(span({ endMs: S, requestModel: 'gpt-4o', outputTokens: 50_000 })); // $0.50
      let m = store.runMetrics('t1', 'r1')!;
      expect(m.costPerMinuteUsd).toBeCloseTo(1.5, 6);
      expect(m.costUsd).toBeCloseTo(1.5, 12);
      clock.advance(30_000); // the $1 span leaves the window
      m = store.runMetrics('t1', 'r1')!;
      expect(m.costPerMinuteUsd).toBeCloseTo(0.5, 6);
      expect(m.costUsd).toBeCloseTo(1.5, 12);
    });

    it('reads the price table on every record (a policy reload takes effect)', () => {
      let prices: Record<string, { input: number; output: number }> = {};
      const { store } = makeStore({ prices: () => prices });
      store.record(span({ requestModel: 'm', inputTokens: 1_000_000 }));
      prices = { m: { input: 3, output: 0 } };
      store.record(span({ requestModel: 'm', inputTokens: 1_000_000 }));
      expect(store.runMetrics('t1', 'r1')!.costUsd).toBe(3);
    });
  });

  describe('error ratio (minCalls 3, lastN 5)', () => {
    it('is 0 until minCalls calls were seen', () => {
      const { store } = makeStore();
      store.record(span({ isError: true }));
      store.record(span({ operation: 'execute_tool', isError: true }));
      expect(store.runMetrics('t1', 'r1')!.errorRatio).toBe(0);
      store.record(span({ operation: 'invoke_agent', isError: true })); // not a call
      expect(store.runMetrics('t1', 'r1')!.errorRatio).toBe(0);
      store.record(span());
      expect(store.runMetrics('t1', 'r1')!.errorRatio).toBeCloseTo(2 / 3, 12);
    });

    it('the last-N ring wraps: old errors drop out', () => {
      const { store, clock } = makeStore();
      for (let i = 0; i < 5; i++) store.record(span({ endMs: clock.ms, isError: true }));
      expect(store.runMetrics('t1', 'r1')!.errorRatio).toBe(1);
      clock.advance(120_000); // the 60 s window forgets them; the ring keeps them until wrapped
      expect(store.runMetrics('t1', 'r1')!.errorRatio).toBe(1);
      for (let i = 0; i < 4; i++) store.record(span({ endMs: clock.ms }));
      expect(store.runMetrics('t1', 'r1')!.errorRatio).toBeCloseTo(1 / 5, 12); // ring: 1 error of 5
      store.record(span({ endMs: clock.ms }));
      expect(store.runMetrics('t1', 'r1')!.errorRatio).toBe(0);
      store.record(span({ endMs: clock.ms, isError: true }));
      // ring: 1 of 5 = 0.2; 60 s: 1 of 6 ≈ 0.167 -> the larger
      expect(store.runMetrics('t1', 'r1')!.errorRatio).toBeCloseTo(0.2, 12);
    });

    it('reports the 60 s window when it is the larger', () => {
      const { store } = makeStore();
      for (let i = 0; i < 3; i++) store.record(span({ isError: true }));
      for (let i = 0; i < 7; i++) store.record(span());
      // ring (last 5): 0 errors; 60 s: 3 of 10
      expect(store.runMetrics('t1', 'r1')!.errorRatio).toBeCloseTo(0.3, 12);
    });
  });

  it('returns undefined for unknown runs and tenants', () => {
    const { store } = makeStore();
    expect(store.runMetrics('t1', 'nope')).toBeUndefined();
    expect(store.tenantMetrics('nope')).toBeUndefined();
    expect(store.runDetails('t1', 'nope')).toBeUndefined();
    expect(store.activeRuns('nope')).toEqual([]);
  });
});
