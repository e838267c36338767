import { describe, expect, it } from 'vitest';
import { parseBreakerSnapshot } from '../../src/breakers/breaker-snapshot.js';
import { CircuitBreaker, grownCooldown, SYSTEM_ACTOR } from '../../src/breakers/circuit-breaker.js';
import { evaluateThresholds, NO_CROSSINGS, type ThresholdEvaluation } from '../../src/breakers/threshold-rules.js';
import type { BreakerSettings } from '../../src/policy/policy-types.js';

const settings: BreakerSettings = { cooldownMs: 1_000, maxCooldownMs: 5_000, cooldownMultiplier: 2, probeSteps: 3 };
const T0 = Date.UTC(2026, 3, 1, 12, 0, 0);

function fakeClock(start = T0) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
    set: (t: number) => {
      now = t;
    },
  };
}

function breakerAt(clock = fakeClock()) {
  return { clock, breaker: new CircuitBreaker({ tenantId: 'acme', scope: 'RUN', runId: 'run-1' }, clock.now) };
}

const over: ThresholdEvaluation = evaluateThresholds({ toolCallsPerMinute: 61 }, { toolCallsPerMinute: 60 }, 0.5);
const atThreshold: ThresholdEvaluation = evaluateThresholds({ toolCallsPerMinute: 60 }, { toolCallsPerMinute: 60 }, 0.5);

describe('CircuitBreaker: CLOSED', () => {
  it('allows with no crossings and warns with warnings only', () => {
    const { breaker } = breakerAt();
    expect(breaker.evaluate(NO_CROSSINGS, settings)).toEqual([]);
    expect(breaker.decision()).toMatchObject({ action: 'ALLOW', state: 'CLOSED', retryAfterMs: 0, tenantId: 'acme', runId: 'run-1', scope: 'RUN' });

    expect(breaker.evaluate(atThreshold, settings)).toEqual([]);
    expect(breaker.decision()).toMatchObject({
      action: 'WARN',
      state: 'CLOSED',
      metric: 'toolCallsPerMinute',
      threshold: 60,
      observed: 60,
    });

    breaker.evaluate(NO_CROSSINGS, settings);
    expect(breaker.decision().action).toBe('ALLOW');
  });

  it('opens on a trip and halts with the whole cooldown to wait', () => {
    const { breaker, clock } = breakerAt();
    const [transition, ...rest] = breaker.evaluate(over, settings);
    expect(rest).toEqual([]);
    expect(transition).toMatchObject({
      from: 'CLOSED',
      to: 'OPEN',
      cause: 'trip',
      at: T0,
      actor: SYSTEM_ACTOR,
      crossing: { metric: 'toolCallsPerMinute', threshold: 60, observed: 61 },
    });
    expect(transition?.snapshot).toMatchObject({ state: 'OPEN', openedAt: T0, cooldownMs: 1_000, reopenCount: 0 });
    expect(breaker.decision()).toMatchObject({
      action: 'HALT',
      state: 'OPEN',
      metric: 'toolCallsPerMinute',
      threshold: 60,
      observed: 61,
      retryAfterMs: 1_000,
    });
    expect(breaker.decision().reason).toContain('toolCallsPerMinute 61 exceeded its threshold 60');
    clock.advance(400);
    expect(breaker.decision().retryAfterMs).toBe(600);
    expect(breaker.nextDeadline()).toBe(T0 + 1_000);
  });

  it('does not restart the cooldown when spans keep arriving while OPEN', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    clock.advance(500);
    expect(breaker.evaluate(over, settings)).toEqual([]);
    expect(breaker.decision().retryAfterMs).toBe(500);
  });
});

describe('CircuitBreaker: cooldown and HALF_OPEN', () => {
  it('stays OPEN 1 ms before the cooldown ends and is HALF_OPEN exactly at it', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    clock.set(T0 + 999);
    expect(breaker.currentState()).toBe('OPEN');
    expect(breaker.decision()).toMatchObject({ action: 'HALT', state: 'OPEN', retryAfterMs: 1 });
    expect(breaker.tick(settings)).toEqual([]);

    clock.set(T0 + 1_000);
    // decision() sees the elapsed cooldown without mutating; tick() applies it.
    expect(breaker.decision()).toMatchObject({ action: 'ALLOW', state: 'HALF_OPEN', retryAfterMs: 0 });
    expect(breaker.state).toBe('OPEN');
    const [transition] = breaker.tick(settings);
    expect(transition).toMatchObject({ from: 'OPEN', to: 'HALF_OPEN', cause: 'cooldown_elapsed', at: T0 + 1_000 });
    expect(breaker.snapshot().probesLeft).toBe(3);
    expect(breaker.nextDeadline()).toBeNull();
  });

  it('applies an elapsed cooldown lazily on evaluate and counts that evaluation as a probe', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    clock.advance(1_000);
    const transitions = breaker.evaluate(NO_CROSSINGS, settings);
    expect(transitions.map((t) => t.cause)).toEqual(['cooldown_elapsed']);
    expect(breaker.snapshot().probesLeft).toBe(2);
  });

  it('closes after probeSteps steps without a trip and resets the cooldown to base', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    clock.advance(1_000);
    breaker.tick(settings);
    breaker.evaluate(over, settings); // re-open: cooldown 2000
    clock.advance(2_000);
    breaker.tick(settings);
    expect(breaker.evaluate(NO_CROSSINGS, settings)).toEqual([]);
    expect(breaker.evaluate(NO_CROSSINGS, settings)).toEqual([]);
    expect(breaker.decision()).toMatchObject({ action: 'ALLOW', state: 'HALF_OPEN' });
    const [closed] = breaker.evaluate(NO_CROSSINGS, settings);
    expect(closed).toMatchObject({ from: 'HALF_OPEN', to: 'CLOSED', cause: 'probes_passed' });
    expect(breaker.snapshot()).toMatchObject({ state: 'CLOSED', cooldownMs: 0, reopenCount: 0, openedAt: null });

    // The next trip starts from the base cooldown again.
    breaker.evaluate(over, settings);
    expect(breaker.decision().retryAfterMs).toBe(1_000);
  });

  it('counts several steps in one evaluation as several probes', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    clock.advance(1_000);
    const transitions = breaker.evaluate(NO_CROSSINGS, settings, 5);
    expect(transitions.map((t) => t.to)).toEqual(['HALF_OPEN', 'CLOSED']);
  });

  it('re-opens on a failed probe with a growing cooldown, capped at maxCooldownMs', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    const cooldowns = [breaker.snapshot().cooldownMs];
    for (let i = 0; i < 5; i++) {
      clock.advance(breaker.snapshot().cooldownMs);
      const transitions = breaker.evaluate(over, settings);
      expect(transitions.map((t) => `${t.from}->${t.to}:${t.cause}`)).toEqual([
        'OPEN->HALF_OPEN:cooldown_elapsed',
        'HALF_OPEN->OPEN:probe_failed',
      ]);
      expect(breaker.decision()).toMatchObject({ action: 'HALT', state: 'OPEN' });
      expect(breaker.decision().retryAfterMs).toBe(breaker.snapshot().cooldownMs);
      cooldowns.push(breaker.snapshot().cooldownMs);
    }
    expect(cooldowns).toEqual([1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
    expect(breaker.snapshot().reopenCount).toBe(5);
  });

  it('fails a probe on the second step too', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    clock.advance(1_000);
    breaker.evaluate(NO_CROSSINGS, settings);
    const [reopened] = breaker.evaluate(over, settings);
    expect(reopened).toMatchObject({ from: 'HALF_OPEN', to: 'OPEN', cause: 'probe_failed' });
    expect(breaker.snapshot().cooldownMs).toBe(2_000);
  });

  it('grows the cooldown from the base, never below it', () => {
    expect(grownCooldown(settings, 0)).toBe(1_000);
    expect(grownCooldown(settings, 10)).toBe(5_000);
    expect(grownCooldown({ ...settings, maxCooldownMs: 10 }, 3)).toBe(1_000);
    expect(grownCooldown({ ...settings, cooldownMultiplier: 0.5 }, 3)).toBe(1_000);
  });
});

describe('CircuitBreaker: operator actions', () => {
  it('forces open until reset, ignoring metrics', () => {
    const { breaker, clock } = breakerAt();
    const transition = breaker.forceOpen('runaway loop on ticket 42', 'alice');
    expect(transition).toMatchObject({ from: 'CLOSED', to: 'FORCED_OPEN', cause: 'forced_open', actor: 'alice' });
    expect(breaker.decision()).toMatchObject({ action: 'HALT', state: 'FORCED_OPEN', reason: 'runaway loop on ticket 42', retryAfterMs: 0 });
    clock.advance(86_400_000);
    expect(breaker.evaluate(NO_CROSSINGS, settings)).toEqual([]);
    expect(breaker.decision().state).toBe('FORCED_OPEN');
    expect(breaker.nextDeadline()).toBeNull();

    expect(breaker.reset('bob')).toMatchObject({ from: 'FORCED_OPEN', to: 'CLOSED', cause: 'reset', actor: 'bob' });
    expect(breaker.decision()).toMatchObject({ action: 'ALLOW', state: 'CLOSED' });
  });

  it('forces open for a duration, then closes by itself (1 ms before: still halted)', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    breaker.forceOpen('maintenance', 'alice', T0 + 10_000);
    expect(breaker.decision()).toMatchObject({ action: 'HALT', state: 'FORCED_OPEN', retryAfterMs: 10_000 });
    expect(breaker.nextDeadline()).toBe(T0 + 10_000);

    clock.set(T0 + 9_999);
    expect(breaker.decision()).toMatchObject({ state: 'FORCED_OPEN', retryAfterMs: 1 });
    clock.set(T0 + 10_000);
    expect(breaker.decision()).toMatchObject({ action: 'ALLOW', state: 'CLOSED' });
    const transitions = breaker.evaluate(over, settings);
    expect(transitions.map((t) => `${t.from}->${t.to}`)).toEqual(['FORCED_OPEN->CLOSED', 'CLOSED->OPEN']);
    expect(transitions[0]?.actor).toBe(SYSTEM_ACTOR);
    // Forcing open dropped the earlier growth: the trip after expiry is a first trip.
    expect(breaker.snapshot().cooldownMs).toBe(1_000);
  });

  it('rejects a forced-open end that is not in the future', () => {
    const { breaker } = breakerAt();
    expect(() => breaker.forceOpen('x', 'alice', T0)).toThrow(RangeError);
    expect(breaker.state).toBe('CLOSED');
  });

  it('disables: always ALLOW and never trips until reset', () => {
    const { breaker } = breakerAt();
    breaker.evaluate(over, settings);
    expect(breaker.disable('carol', 'false positives during the launch')).toMatchObject({ from: 'OPEN', to: 'DISABLED', actor: 'carol' });
    for (let i = 0; i < 3; i++) expect(breaker.evaluate(over, settings)).toEqual([]);
    expect(breaker.decision()).toMatchObject({ action: 'ALLOW', state: 'DISABLED', reason: 'false positives during the launch' });
    breaker.reset('carol');
    expect(breaker.evaluate(over, settings).map((t) => t.to)).toEqual(['OPEN']);
  });

  it('resets an OPEN breaker with grown cooldown back to base', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    clock.advance(1_000);
    breaker.evaluate(over, settings);
    expect(breaker.snapshot().cooldownMs).toBe(2_000);
    breaker.reset('dave');
    expect(breaker.snapshot()).toEqual({
      state: 'CLOSED',
      openedAt: null,
      cooldownMs: 0,
      reopenCount: 0,
      probesLeft: 0,
      forcedUntil: null,
      forcedBy: null,
      lastCrossing: null,
      reason: 'reset by dave',
    });
    breaker.evaluate(over, settings);
    expect(breaker.snapshot().cooldownMs).toBe(1_000);
  });
});

describe('CircuitBreaker: snapshot and restore', () => {
  it('round-trips through JSON and resumes the remaining cooldown in a new process', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    clock.advance(1_000);
    breaker.evaluate(over, settings); // OPEN, cooldown 2000, reopenCount 1
    const stored = JSON.parse(JSON.stringify(breaker.snapshot())) as unknown;
    const snapshot = parseBreakerSnapshot(stored);
    expect(snapshot).toEqual(breaker.snapshot());

    const later = fakeClock(T0 + 1_500);
    const restored = CircuitBreaker.restore(breaker.key, snapshot!, later.now);
    expect(restored.decision()).toMatchObject({ action: 'HALT', state: 'OPEN', retryAfterMs: 1_500, metric: 'toolCallsPerMinute' });
    later.advance(1_500);
    restored.evaluate(over, settings);
    // The growth continues from the restored reopenCount.
    expect(restored.snapshot()).toMatchObject({ state: 'OPEN', cooldownMs: 4_000, reopenCount: 2 });
  });

  it('restores HALF_OPEN with its remaining probes and FORCED_OPEN with its end', () => {
    const { breaker, clock } = breakerAt();
    breaker.evaluate(over, settings);
    clock.advance(1_000);
    breaker.evaluate(NO_CROSSINGS, settings);
    const halfOpen = CircuitBreaker.restore(breaker.key, breaker.snapshot(), clock.now);
    expect(halfOpen.evaluate(NO_CROSSINGS, settings)).toEqual([]);
    expect(halfOpen.evaluate(NO_CROSSINGS, settings).map((t) => t.to)).toEqual(['CLOSED']);

    breaker.forceOpen('hold', 'alice', T0 + 60_000);
    const forced = CircuitBreaker.restore(breaker.key, breaker.snapshot(), clock.now);
    expect(forced.decision()).toMatchObject({ state: 'FORCED_OPEN', reason: 'hold', retryAfterMs: 59_000 });
  });

  it('rejects malformed snapshots', () => {
    expect(parseBreakerSnapshot({ state: 'AJAR' })).toBeNull();
    expect(parseBreakerSnapshot({ ...new CircuitBreaker({ tenantId: 't', scope: 'TENANT' }, Date.now).snapshot(), cooldownMs: -1 })).toBeNull();
    expect(parseBreakerSnapshot('OPEN')).toBeNull();
  });

  it('does not share state with a snapshot handed out', () => {
    const { breaker } = breakerAt();
    breaker.evaluate(over, settings);
    const snapshot = breaker.snapshot();
    snapshot.lastCrossing!.observed = 1;
    snapshot.cooldownMs = 9;
    expect(breaker.decision()).toMatchObject({ observed: 61, retryAfterMs: 1_000 });
  });
});
