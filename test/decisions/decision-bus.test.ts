import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import { allowDecision, type Decision, type DecisionDraft } from '../../src/contracts/decision.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import { SubscriberOverflowError, type Subscription } from '../../src/decisions/subscriber-queue.js';

const T0 = Date.UTC(2026, 3, 1, 12, 0, 0);

function busWithClock(options: { subscriberBufferSize?: number; initialSequence?: number } = {}) {
  let now = T0;
  const bus = new DecisionBus({ now: () => now, ...options });
  return {
    bus,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function halt(tenantId: string, runId: string | undefined, retryAfterMs: number, observed = 61): DecisionDraft {
  return {
    ...allowDecision(tenantId, runId),
    action: 'HALT',
    state: 'OPEN',
    reason: 'toolCallsPerMinute exceeded its threshold',
    metric: 'toolCallsPerMinute',
    threshold: 60,
    observed,
    retryAfterMs,
  };
}

function warn(tenantId: string, runId: string | undefined, observed = 40): DecisionDraft {
  return { ...allowDecision(tenantId, runId), action: 'WARN', metric: 'stepCount', threshold: 50, observed, reason: 'near' };
}

/** The next message if one is waiting, else 'none' (the bus delivers synchronously). */
async function nextNow<T>(subscription: Subscription<T>): Promise<T | 'none' | 'done'> {
  if (subscription.pending === 0) return 'none';
  const result = await subscription.next();
  return result.done ? 'done' : result.value;
}

async function drain<T>(subscription: Subscription<T>): Promise<T[]> {
  const messages: T[] = [];
  while (subscription.pending > 0) {
    const result = await subscription.next();
    if (result.done) break;
    messages.push(result.value);
  }
  return messages;
}

describe('DecisionBus: latest', () => {
  it('defaults to ALLOW/CLOSED, falls back to the tenant-wide decision, prefers the more severe', () => {
    const { bus } = busWithClock();
    expect(bus.latest('acme')).toMatchObject({ tenantId: 'acme', scope: 'TENANT', action: 'ALLOW', state: 'CLOSED' });
    expect(bus.latest('acme', 'r1')).toMatchObject({ runId: 'r1', scope: 'RUN', action: 'ALLOW', state: 'CLOSED' });

    const tenantHalt = bus.publish(halt('acme', undefined, 30_000));
    expect(tenantHalt.sequence).toBe(1);
    expect(bus.latest('acme', 'r1')).toEqual(tenantHalt);

    const runWarn = bus.publish(warn('acme', 'r1'));
    // The run's own WARN does not lift the tenant-wide HALT; the sequence is the newer of the two.
    expect(bus.latest('acme', 'r1')).toMatchObject({ action: 'HALT', scope: 'TENANT', sequence: runWarn.sequence });
    expect(bus.latest('acme', 'r1').runId).toBeUndefined();

    bus.publish(allowDecision('acme'));
    expect(bus.latest('acme', 'r1')).toMatchObject({ action: 'WARN', runId: 'r1' });
    expect(bus.latest('other', 'r1').action).toBe('ALLOW');
  });

  it('assigns monotonic sequences starting after the seed, with issuedAt from the clock', () => {
    const { bus, advance } = busWithClock({ initialSequence: 41 });
    const first = bus.publish(warn('acme', 'r1'));
    advance(5);
    const second = bus.publish(halt('acme', 'r2', 1_000));
    expect([first.sequence, second.sequence]).toEqual([42, 43]);
    expect(second.issuedAt).toBe(new Date(T0 + 5).toISOString());
    expect(bus.sequence).toBe(43);
  });

  it('does not store runs that were only ever allowed', () => {
    const { bus } = busWithClock();
    for (let i = 0; i < 100; i++) bus.publish(allowDecision('acme', `r${i}`));
    expect(bus.storedDecisions()).toBe(0);
    expect(bus.sequence).toBe(0);
  });
});

describe('DecisionBus: coalescing', () => {
  it('sends nothing when only observed values or the countdown changed', async () => {
    const { bus, advance } = busWithClock();
    const sub = bus.subscribe('acme', 'r1');
    expect(await drain(sub)).toHaveLength(1); // the current ALLOW

    const first = bus.publish(halt('acme', 'r1', 10_000, 61));
    advance(400);
    const again = bus.publish(halt('acme', 'r1', 9_600, 75));
    expect(again.sequence).toBe(first.sequence);
    expect(bus.latest('acme', 'r1').observed).toBe(75);
    expect(await drain(sub)).toEqual([first]);

    // The retry deadline moved by less than the bucket: still the same decision.
    bus.publish(halt('acme', 'r1', 10_200));
    expect(await drain(sub)).toEqual([]);
    // Moved by a bucket or more (a re-open with a longer cooldown): a new decision.
    const longer = bus.publish(halt('acme', 'r1', 20_000));
    expect(longer.sequence).toBe(first.sequence + 1);
    expect(await drain(sub)).toEqual([longer]);
  });

  it('sends a change of action, state, fallback model or tier', async () => {
    const { bus } = busWithClock();
    const sub = bus.subscribe('acme');
    await drain(sub);
    const degrade: DecisionDraft = { ...warn('acme', 'r1'), action: 'DEGRADE', fallbackModel: 'small', tier: 1, degraded: true };
    bus.publish(degrade);
    bus.publish({ ...degrade, observed: 49 });
    bus.publish({ ...degrade, fallbackModel: 'smaller', tier: 2 });
    bus.publish({ ...degrade, fallbackModel: 'smaller', tier: 2, state: 'HALF_OPEN' });
    const messages = await drain(sub);
    expect(messages.map((m) => [m.fallbackModel, m.tier, m.state])).toEqual([
      ['small', 1, 'CLOSED'],
      ['smaller', 2, 'CLOSED'],
      ['smaller', 2, 'HALF_OPEN'],
    ]);
  });
});

describe('DecisionBus: subscriptions', () => {
  it('yields the current decision first, then changes', async () => {
    const { bus } = busWithClock();
    const current = bus.publish(halt('acme', 'r1', 5_000));
    const sub = bus.subscribe('acme', 'r1');
    expect(await nextNow(sub)).toEqual(current);
    const allowed = bus.publish(allowDecision('acme', 'r1'));
    expect(await nextNow(sub)).toEqual(allowed);
    expect(await nextNow(sub)).toBe('none');
  });

  it('gives a tenant subscriber the tenant-wide decision and every run not at ALLOW', async () => {
    const { bus } = busWithClock();
    bus.publish(warn('acme', 'r1'));
    bus.publish(halt('acme', 'r2', 1_000));
    bus.publish(warn('acme', 'r3'));
    bus.publish(allowDecision('acme', 'r3'));
    bus.publish(halt('other', 'x', 1_000));
    const initial = await drain(bus.subscribe('acme'));
    expect(initial.map((d) => [d.runId ?? '-', d.action])).toEqual([
      ['-', 'ALLOW'],
      ['r1', 'WARN'],
      ['r2', 'HALT'],
    ]);
  });

  it('serves 5000 runs with one message for a tenant-wide decision', async () => {
    const { bus } = busWithClock();
    for (let i = 0; i < 5000; i++) bus.publish(warn('big', `run-${i}`));
    const sub = bus.subscribe('big');
    expect(await drain(sub)).toHaveLength(5001);

    const tenantHalt = bus.publish(halt('big', undefined, 60_000));
    expect(await drain(sub)).toEqual([tenantHalt]);
    // Every run now reads the tenant-wide HALT without a message per run.
    expect(bus.latest('big', 'run-4999')).toMatchObject({ action: 'HALT', scope: 'TENANT' });
    expect(bus.storedDecisions()).toBe(5001);
  });

  it('pushes the effective decision to each run subscriber when the tenant-wide one changes', async () => {
    const { bus } = busWithClock();
    const subs = Array.from({ length: 50 }, (_, i) => bus.subscribe('acme', `r${i}`));
    for (const sub of subs) await drain(sub);
    bus.publish(halt('acme', 'r7', 1_000)); // only r7's subscriber hears this
    const tenantHalt = bus.publish(halt('acme', undefined, 60_000));
    for (const [i, sub] of subs.entries()) {
      const messages = await drain(sub);
      if (i === 7) expect(messages.map((m) => m.scope)).toEqual(['RUN', 'TENANT']);
      else expect(messages).toEqual([tenantHalt]);
    }
  });

  it('never sends a run subscriber a lower sequence, even when an older decision wins again', async () => {
    const { bus } = busWithClock();
    bus.publish(halt('acme', undefined, 60_000));
    const sub = bus.subscribe('acme', 'r1');
    bus.publish({ ...halt('acme', 'r1', 120_000) });
    bus.publish(allowDecision('acme', 'r1')); // the tenant-wide HALT governs again
    const sequences = [...(await drain(sub))].map((d) => d.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(sequences).toEqual([1, 2, 3]);
  });

  it('bounds a slow reader: superseded decisions for the same run are dropped', async () => {
    const { bus, advance } = busWithClock({ subscriberBufferSize: 4 });
    const sub = bus.subscribe('acme');
    await drain(sub);
    let last: Decision | undefined;
    for (let i = 0; i < 1000; i++) {
      advance(1);
      last = bus.publish(i % 2 === 0 ? halt('acme', 'r1', 5_000) : warn('acme', 'r1'));
    }
    bus.publish(warn('acme', 'r2'));
    const messages = await drain(sub);
    expect(messages.length).toBeLessThanOrEqual(4);
    // The newest state of each run survives.
    expect(messages.filter((m) => m.runId === 'r1').at(-1)).toEqual(last);
    expect(messages.some((m) => m.runId === 'r2')).toBe(true);
  });

  it('ends a slow reader with an overflow error when nothing can be coalesced, and forgets it', async () => {
    const { bus } = busWithClock({ subscriberBufferSize: 3 });
    const sub = bus.subscribe('acme');
    await drain(sub);
    for (let i = 0; i < 4; i++) bus.publish(warn('acme', `r${i}`));
    await expect(sub.next()).rejects.toBeInstanceOf(SubscriberOverflowError);
    expect(await sub.next()).toEqual({ value: undefined, done: true });
    expect(bus.subscriberCount()).toBe(0);
  });

  it('cleans up on return(), and a pending read ends', async () => {
    const { bus } = busWithClock();
    const tenantSub = bus.subscribe('acme');
    const runSub = bus.subscribe('acme', 'r1');
    const events = bus.subscribeBreakerEvents('acme');
    await drain(tenantSub);
    await drain(runSub);
    expect(bus.subscriberCount()).toBe(3);
    const pending = runSub.next();
    await runSub.return?.();
    expect(await pending).toEqual({ value: undefined, done: true });
    await tenantSub.return?.();
    await events.return?.();
    expect(bus.subscriberCount()).toBe(0);
    bus.publish(halt('acme', 'r1', 1_000)); // no subscriber left: nothing to deliver, nothing thrown
  });

  it('for await loops end when the consumer breaks', async () => {
    const { bus } = busWithClock();
    bus.publish(halt('acme', 'r1', 1_000));
    for await (const decision of bus.subscribe('acme', 'r1')) {
      expect(decision.action).toBe('HALT');
      break;
    }
    expect(bus.subscriberCount()).toBe(0);
  });
});

describe('DecisionBus: forgetting runs and breaker events', () => {
  it('forgets a finished run', () => {
    const { bus } = busWithClock();
    bus.publish(halt('acme', 'r1', 1_000));
    bus.publish(halt('acme', 'r2', 1_000));
    bus.forgetRun('acme', 'r1');
    expect(bus.storedDecisions()).toBe(1);
    expect(bus.latest('acme', 'r1').action).toBe('ALLOW');
    bus.forgetRun('acme', 'r2');
    bus.forgetRun('acme', 'never-seen');
    expect(bus.storedDecisions()).toBe(0);
  });

  it('delivers breaker events to that tenant only', async () => {
    const { bus } = busWithClock();
    const acme = bus.subscribeBreakerEvents('acme');
    const other = bus.subscribeBreakerEvents('other');
    const event = { tenantId: 'acme', seq: 1, kind: 'breaker_transition', oldState: 'CLOSED', newState: 'OPEN' } as AuditEvent;
    bus.publishBreakerEvent(event);
    bus.publishBreakerEvent({ ...event, tenantId: 'nobody-listening' });
    expect(await drain(acme)).toEqual([event]);
    expect(await drain(other)).toEqual([]);
  });
});
