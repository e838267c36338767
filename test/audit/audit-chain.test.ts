import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/audit-chain.js';
import { chainEvent, eventHash, GENESIS_HEAD, type AuditEvent, type AuditEventInput } from '../../src/audit/audit-event.js';

const T0 = Date.UTC(2026, 3, 1, 12, 0, 0);

function chain(n: number): AuditEvent[] {
  const events: AuditEvent[] = [];
  let head = GENESIS_HEAD;
  for (let i = 0; i < n; i++) {
    const event = chainEvent({ tenantId: 'acme', kind: 'breaker_transition', reason: `event ${i + 1}`, observed: i / 3 }, head, T0 + i);
    events.push(event);
    head = { seq: event.seq, hash: event.hash };
  }
  return events;
}

function headOf(events: AuditEvent[]) {
  const last = events.at(-1)!;
  return { seq: last.seq, hash: last.hash };
}

describe('chainEvent', () => {
  it('numbers events from 1 and links each to the previous hash', () => {
    const [a, b] = chain(2);
    expect(a).toMatchObject({ seq: 1, prevHash: '' });
    expect(b).toMatchObject({ seq: 2, prevHash: a!.hash });
    expect(a!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(eventHash(b!.prevHash, b!)).toBe(b!.hash);
  });

  it('fills defaults, keeps JSON details and rejects what could not be stored as hashed', () => {
    const event = chainEvent({ tenantId: 't', kind: 'policy_change', details: { tier: 'pro' } }, GENESIS_HEAD, T0 + 0.7);
    expect(event).toMatchObject({ runId: '', scope: '', threshold: 0, observed: 0, details: '{"tier":"pro"}', eventTime: T0 });
    const bad: AuditEventInput[] = [
      { tenantId: '', kind: 'policy_change' },
      { tenantId: 't', kind: 'nonsense' as 'policy_change' },
      { tenantId: 't', kind: 'policy_change', observed: NaN },
      { tenantId: 't', kind: 'policy_change', details: 'not json' },
    ];
    for (const input of bad) expect(() => chainEvent(input, GENESIS_HEAD, T0)).toThrow(TypeError);
  });

  it('replaces lone surrogates, as UTF-8 storage would', () => {
    const event = chainEvent({ tenantId: 't', kind: 'operator_action', reason: 'bad \uD800 text' }, GENESIS_HEAD, T0);
    expect(event.reason).toBe('bad \uFFFD text');
  });
});

describe('verifyChain', () => {
  it('accepts an intact chain ending at its head', () => {
    const events = chain(5);
    expect(verifyChain(events, headOf(events))).toEqual({ ok: true, events: 5 });
    expect(verifyChain([], null)).toEqual({ ok: true, events: 0 });
  });

  it('finds a modified event', () => {
    const events = chain(5);
    events[2] = { ...events[2]!, reason: 'nothing happened' };
    expect(verifyChain(events, headOf(events))).toMatchObject({ ok: false, events: 5, firstBadSeq: 3 });
  });

  it('finds a modified event whose hash was recomputed, at the next link', () => {
    const events = chain(5);
    const forged = { ...events[2]!, reason: 'nothing happened' };
    events[2] = { ...forged, hash: eventHash(forged.prevHash, forged) };
    const result = verifyChain(events, headOf(chain(5)));
    expect(result).toMatchObject({ ok: false, firstBadSeq: 4 });
    expect(result.problem).toContain('PrevHash');
  });

  it('finds a deleted event as a gap', () => {
    const events = chain(5);
    const result = verifyChain([events[0]!, events[2]!, events[3]!, events[4]!], headOf(events));
    expect(result).toMatchObject({ ok: false, events: 4, firstBadSeq: 2 });
    expect(result.problem).toContain('missing');
  });

  it('finds a duplicated (inserted) Seq and a reordered pair', () => {
    const events = chain(4);
    const inserted = { ...events[1]!, reason: 'forged' };
    expect(verifyChain([events[0]!, events[1]!, inserted, events[2]!, events[3]!], headOf(events))).toMatchObject({
      ok: false,
      firstBadSeq: 2,
    });
    const swapped = [events[0]!, { ...events[2]!, seq: 2 }, { ...events[1]!, seq: 3 }, events[3]!];
    expect(verifyChain(swapped, headOf(events))).toMatchObject({ ok: false, firstBadSeq: 2 });
  });

  it('needs the head to see the newest events deleted', () => {
    const events = chain(5);
    const truncated = events.slice(0, 3);
    // Alone, what is left is a perfectly valid chain: this is what the head is for.
    expect(verifyChain(truncated, headOf(truncated))).toMatchObject({ ok: true });
    const result = verifyChain(truncated, headOf(events));
    expect(result).toMatchObject({ ok: false, events: 3, firstBadSeq: 4 });
    expect(result.problem).toContain('newest');
    expect(verifyChain([], headOf(events))).toMatchObject({ ok: false, firstBadSeq: 1 });
  });

  it('reports events beyond the head and a missing head', () => {
    const events = chain(3);
    expect(verifyChain(events, { seq: 2, hash: events[1]!.hash })).toMatchObject({ ok: false, firstBadSeq: 3 });
    expect(verifyChain(events, null)).toMatchObject({ ok: false, events: 3 });
  });
});
