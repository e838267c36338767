import { describe, expect, it } from 'vitest';
import { SubscriberOverflowError, SubscriberQueue } from '../../src/decisions/subscriber-queue.js';
import { SubscriptionRegistry, type SubscriptionOwner } from '../../src/api/subscription-registry.js';

// The places a subscription holds are given back however it ends: by the client, by its source,
// by an overflowing reader (the transports then never call return()), or by a revoked token.

function owner(connection: object | string, credential: string, valid = () => true): SubscriptionOwner {
  return { connection, credential, stillValid: valid };
}

function queue(capacity = 8): SubscriberQueue<number> {
  return new SubscriberQueue<number>({ capacity, onClose: () => {} });
}

describe('SubscriptionRegistry', () => {
  it('refuses past either limit before opening the source', () => {
    const registry = new SubscriptionRegistry({ perConnection: 2, perToken: 3 });
    const ws = {};
    registry.open(owner(ws, 't'), 'f', () => queue());
    registry.open(owner(ws, 't'), 'f', () => queue());
    let started = false;
    expect(() => registry.open(owner(ws, 't'), 'f', () => ((started = true), queue()))).toThrow(/this connection already holds 2 subscriptions/);
    registry.open(owner({}, 't'), 'f', () => queue());
    expect(() => registry.open(owner({}, 't'), 'f', () => ((started = true), queue()))).toThrow(/this token already holds 3 subscriptions/);
    expect(started).toBe(false);
    expect(registry.open(owner({}, 'other'), 'f', () => queue())).toBeDefined();
    expect(registry.size).toBe(4);
  });

  it('gives the place back when the client ends it, the source ends, or the reader overflows', async () => {
    const registry = new SubscriptionRegistry({ perConnection: 10, perToken: 10 });
    const byClient = registry.open(owner('c', 't'), 'f', () => queue());
    await byClient.return!();
    expect(registry.size).toBe(0);

    const source = queue();
    const bySource = registry.open(owner('c', 't'), 'f', () => source);
    void source.return();
    expect(await bySource.next()).toEqual({ done: true, value: undefined });
    expect(registry.size).toBe(0);

    const slow = queue(1);
    const overflowing = registry.open(owner('c', 't'), 'f', () => slow);
    slow.push(1);
    slow.push(2);
    await expect(overflowing.next()).rejects.toBeInstanceOf(SubscriberOverflowError);
    expect(registry.size).toBe(0);
  });

  it('ends a revoked subscription with a TOKEN_REVOKED error, also while it waits for a message', async () => {
    const registry = new SubscriptionRegistry({ perConnection: 10, perToken: 10 });
    let valid = true;
    const source = queue();
    const revoked = registry.open(owner('c', 't', () => valid), 'decisions', () => source);
    const kept = registry.open(owner('d', 'u'), 'decisions', () => queue());
    source.push(1);
    expect(await revoked.next()).toEqual({ done: false, value: 1 });
    const waiting = revoked.next();
    valid = false;
    expect(registry.revalidate()).toBe(1);
    expect(registry.size).toBe(1);
    const last = await waiting;
    expect(last.done).toBe(false);
    const error = (last.value as { decisions: Error & { extensions?: { code?: string } } }).decisions;
    expect(error.message).toMatch(/revoked or changed/);
    expect(error.extensions?.code).toBe('TOKEN_REVOKED');
    expect(source.closed).toBe(true);
    expect(await revoked.next()).toEqual({ done: true, value: undefined });
    expect(registry.revalidate()).toBe(0);
    await kept.return!();
    expect(registry.size).toBe(0);
  });
});
