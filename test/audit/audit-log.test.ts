import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { AuditLog as AuditLogClass } from '../../src/audit/audit-log.js';
import type { AuditBatch, AuditStore } from '../../src/audit/audit-store.js';
import { ClickHouseAuditStore } from '../../src/storage/repositories/clickhouse-audit-store.js';
import { openAuditLog } from '../helpers/audit.js';
import { CircuitBreaker } from '../../src/breakers/circuit-breaker.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import { evaluateThresholds } from '../../src/breakers/threshold-rules.js';
import { breakerTransitionEvent } from '../../src/breakers/transition-events.js';
import type { BreakerSettings } from '../../src/policy/policy-types.js';
import { openStore, queryRows, type Store } from '../../src/storage/clickhouse.js';
import { migrate } from '../../src/storage/migrations.js';

const T0 = Date.UTC(2026, 3, 1, 12, 0, 0);
const settings: BreakerSettings = { cooldownMs: 30_000, maxCooldownMs: 300_000, cooldownMultiplier: 2, probeSteps: 2 };

// chdb binds one data directory per process: this file opens one store and shares it.
let dataDir: string;
let store: Store;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'bw-audit-'));
  store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir });
  await migrate(store.client);
});

afterAll(async () => {
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function clock(start = T0) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

async function appendMany(log: AuditLog, tenantId: string, n: number) {
  const events = [];
  for (let i = 1; i <= n; i++) {
    events.push(
      await log.append({
        tenantId,
        kind: i % 2 ? 'breaker_transition' : 'operator_action',
        runId: `run-${i % 3}`,
        scope: 'RUN',
        metric: 'toolCallsPerMinute',
        threshold: 60,
        observed: 60 + i / 3,
        oldState: 'CLOSED',
        newState: 'OPEN',
        actor: i % 2 ? 'breakwater' : 'alice',
        reason: `event ${i}`,
        details: { i, note: 'ünïcödé ✓' },
      }),
    );
  }
  return events;
}

async function mutate(sql: string, tenantId: string, params: Record<string, unknown> = {}) {
  await store.client.command({ query: `${sql} SETTINGS mutations_sync = 2`, query_params: { tenantId, ...params } });
}

describe('AuditLog on embedded ClickHouse', () => {
  it('appends a chain that verifies and lists back exactly', async () => {
    const c = clock();
    const log = await openAuditLog(store.client, { now: c.now });
    const events = await appendMany(log, 'intact', 5);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(events[0]!.prevHash).toBe('');
    expect(events[1]!.prevHash).toBe(events[0]!.hash);
    expect(await log.verify('intact')).toEqual({ ok: true, events: 5 });
    expect(await (await openAuditLog(store.client, { now: c.now, verifyPageSize: 2 })).verify('intact')).toEqual({ ok: true, events: 5 });

    const listed = await log.list('intact', { order: 'asc' });
    expect(listed).toEqual(events);
    expect(await log.verify('nobody')).toEqual({ ok: true, events: 0 });
  });

  it('round-trips awkward numbers and times without breaking the hash', async () => {
    const log = await openAuditLog(store.client, { now: () => T0 + 123 });
    for (const observed of [0.1, 1 / 3, 1e21, -0, 5e-324, 1.7976931348623157e308, 123456789 + 2 / 7]) {
      await log.append({ tenantId: 'numbers', kind: 'degradation', observed, threshold: -observed });
    }
    await log.append({ tenantId: 'numbers', kind: 'degradation', eventTime: Date.UTC(2099, 11, 31, 23, 59, 59, 999) });
    expect(await log.verify('numbers')).toEqual({ ok: true, events: 8 });
    const [newest] = await log.list('numbers', { limit: 1 });
    expect(newest!.eventTime).toBe(Date.UTC(2099, 11, 31, 23, 59, 59, 999));
  });

  it('fails verification at the Seq of an event modified in place', async () => {
    const log = await openAuditLog(store.client, { now: clock().now });
    await appendMany(log, 'modified', 5);
    await mutate("ALTER TABLE audit_events UPDATE Reason = 'x' WHERE TenantId = {tenantId:String} AND Seq = 3", 'modified');
    const result = await log.verify('modified');
    expect(result).toMatchObject({ ok: false, events: 5, firstBadSeq: 3 });
    expect(result.problem).toContain('modified');
  });

  it('reports a deleted event as a gap', async () => {
    const log = await openAuditLog(store.client, { now: clock().now });
    await appendMany(log, 'deleted', 5);
    await mutate('ALTER TABLE audit_events DELETE WHERE TenantId = {tenantId:String} AND Seq = 2', 'deleted');
    const result = await log.verify('deleted');
    expect(result).toMatchObject({ ok: false, events: 4, firstBadSeq: 2 });
    expect(result.problem).toContain('missing');
  });

  it('catches the newest event deleted through audit_heads, and keeps the gap after a restart', async () => {
    const log = await openAuditLog(store.client, { now: clock().now });
    await appendMany(log, 'truncated', 4);
    await mutate('ALTER TABLE audit_events DELETE WHERE TenantId = {tenantId:String} AND Seq = 4', 'truncated');
    const result = await log.verify('truncated');
    expect(result).toMatchObject({ ok: false, events: 3, firstBadSeq: 4 });
    expect(result.problem).toContain('newest');

    // A restarted process continues after the recorded head, not into the deleted Seq.
    const restarted = await openAuditLog(store.client, { now: clock().now });
    const next = await restarted.append({ tenantId: 'truncated', kind: 'operator_action', reason: 'after restart' });
    expect(next.seq).toBe(5);
    expect(await restarted.verify('truncated')).toMatchObject({ ok: false, firstBadSeq: 4 });
  });

  it('detects an event inserted by hand', async () => {
    const log = await openAuditLog(store.client, { now: clock().now });
    const [first] = await appendMany(log, 'inserted', 3);
    await store.client.insert({
      table: 'audit_events',
      values: [
        {
          TenantId: 'inserted',
          Seq: 2,
          EventTime: '2026-04-01 12:00:00.000',
          Kind: 'operator_action',
          Reason: 'forged',
          Details: '{}',
          PrevHash: first!.hash,
          Hash: 'f'.repeat(64),
        },
      ],
      format: 'JSONEachRow',
    });
    const result = await log.verify('inserted');
    expect(result).toMatchObject({ ok: false, events: 4, firstBadSeq: 2 });
    // Paging by (Seq, Hash) reads a duplicated Seq even when it straddles a page boundary.
    for (const verifyPageSize of [1, 2, 3]) {
      expect(await (await openAuditLog(store.client, { now: Date.now, verifyPageSize })).verify('inserted')).toMatchObject({
        ok: false,
        events: 4,
        firstBadSeq: 2,
      });
    }
  });

  it('keeps one chain under concurrent appends for one tenant', async () => {
    const log = await openAuditLog(store.client, { now: clock().now });
    const events = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        log.append({ tenantId: i % 2 ? 'busy-a' : 'busy-b', kind: 'breaker_transition', reason: `concurrent ${i}` }),
      ),
    );
    const seqsA = events.filter((e) => e.tenantId === 'busy-a').map((e) => e.seq);
    expect(seqsA).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await log.verify('busy-a')).toEqual({ ok: true, events: 20 });
    expect(await log.verify('busy-b')).toEqual({ ok: true, events: 20 });
  });

  it('drains every queued append, including ones queued while draining', async () => {
    const log = await openAuditLog(store.client, { now: clock().now });
    const queued = Array.from({ length: 10 }, (_, i) => log.append({ tenantId: i % 2 ? 'drain-a' : 'drain-b', kind: 'breaker_transition', reason: `q ${i}` }));
    void queued[0]!.then(() => log.append({ tenantId: 'drain-c', kind: 'operator_action', reason: 'late' }));
    await log.flush();
    const rows = await store.client.query({ query: "SELECT TenantId, count() AS n FROM audit_events WHERE TenantId LIKE 'drain-%' GROUP BY TenantId ORDER BY TenantId", format: 'JSONEachRow' });
    expect(await rows.json()).toEqual([
      { TenantId: 'drain-a', n: 5 },
      { TenantId: 'drain-b', n: 5 },
      { TenantId: 'drain-c', n: 1 },
    ]);
  });

  it('continues the chain in a new AuditLog (restart)', async () => {
    const first = await openAuditLog(store.client, { now: clock().now });
    const before = await appendMany(first, 'restart', 3);
    const second = await openAuditLog(store.client, { now: clock().now });
    const [next] = await appendMany(second, 'restart', 1);
    expect(next!.seq).toBe(4);
    expect(next!.prevHash).toBe(before[2]!.hash);
    expect(await second.verify('restart')).toEqual({ ok: true, events: 4 });
  });

  it('lists with filters bound as parameters', async () => {
    const c = clock();
    const log = await openAuditLog(store.client, { now: c.now });
    for (let i = 0; i < 6; i++) {
      c.advance(1_000);
      await log.append({
        tenantId: 'listing',
        kind: i % 2 ? 'policy_change' : 'breaker_transition',
        runId: i < 3 ? 'r1' : 'r2',
        reason: `${i}`,
      });
    }
    expect((await log.list('listing')).map((e) => e.seq)).toEqual([6, 5, 4, 3, 2, 1]);
    expect((await log.list('listing', { limit: 2 })).map((e) => e.seq)).toEqual([6, 5]);
    expect((await log.list('listing', { limit: 2, beforeSeq: 5 })).map((e) => e.seq)).toEqual([4, 3]);
    expect((await log.list('listing', { kinds: ['policy_change'] })).map((e) => e.seq)).toEqual([6, 4, 2]);
    expect((await log.list('listing', { runId: 'r1', order: 'asc' })).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await log.list('listing', { from: T0 + 2_000, to: T0 + 4_000 })).map((e) => e.seq)).toEqual([3, 2]);
    expect(await log.list("listing' OR 1=1 --")).toEqual([]);
    expect(await log.list('listing', { kinds: ["breaker_transition') OR (1=1" as 'policy_change'] })).toEqual([]);
  });

  it('restores OPEN breakers and their cooldowns from the newest transition', async () => {
    const c = clock();
    const log = await openAuditLog(store.client, { now: c.now });
    const bus = new DecisionBus({ now: c.now });
    const over = evaluateThresholds({ toolCallsPerMinute: 120 }, { toolCallsPerMinute: 60 }, 0.5);
    const record = async (breaker: CircuitBreaker, transitions: ReturnType<CircuitBreaker['evaluate']>) => {
      for (const t of transitions) await log.append(breakerTransitionEvent(t, bus.publish(breaker.decision())));
    };

    const open = new CircuitBreaker({ tenantId: 'restore', scope: 'RUN', runId: 'r-open' }, c.now);
    const closedAgain = new CircuitBreaker({ tenantId: 'restore', scope: 'RUN', runId: 'r-closed' }, c.now);
    const forced = new CircuitBreaker({ tenantId: 'restore', scope: 'TENANT' }, c.now);
    await record(closedAgain, closedAgain.evaluate(over, settings));
    await record(open, open.evaluate(over, settings));
    c.advance(30_000);
    await record(open, open.evaluate(over, settings)); // HALF_OPEN → OPEN, cooldown 60 s
    await record(closedAgain, [closedAgain.reset('alice')]);
    await record(forced, [forced.forceOpen('incident 7', 'bob', T0 + 3_600_000)]);

    const restored = await log.restoreBreakers();
    const byRun = new Map(restored.filter((r) => r.key.tenantId === 'restore').map((r) => [r.key.runId ?? r.key.scope, r]));
    expect([...byRun.keys()].sort()).toEqual(['TENANT', 'r-open']);
    expect(byRun.get('r-open')!.snapshot).toEqual(open.snapshot());

    c.advance(10_000);
    const resumed = CircuitBreaker.restore(byRun.get('r-open')!.key, byRun.get('r-open')!.snapshot, c.now);
    expect(resumed.decision()).toMatchObject({ action: 'HALT', state: 'OPEN', retryAfterMs: 50_000, runId: 'r-open' });
    const resumedForced = CircuitBreaker.restore(byRun.get('TENANT')!.key, byRun.get('TENANT')!.snapshot, c.now);
    expect(resumedForced.decision()).toMatchObject({ action: 'HALT', state: 'FORCED_OPEN', reason: 'incident 7' });

    const kinds = await queryRows<{ Kind: string; Actor: string; NewState: string }>(
      store.client,
      'SELECT Kind, Actor, NewState FROM audit_events WHERE TenantId = {t:String} ORDER BY Seq',
      { t: 'restore' },
    );
    expect(kinds.map((k) => `${k.Kind}:${k.Actor}:${k.NewState}`)).toEqual([
      'breaker_transition:breakwater:OPEN',
      'breaker_transition:breakwater:OPEN',
      'breaker_transition:breakwater:HALF_OPEN',
      'breaker_transition:breakwater:OPEN',
      'operator_action:alice:CLOSED',
      'operator_action:bob:FORCED_OPEN',
    ]);
    expect(await log.verify('restore')).toEqual({ ok: true, events: 6 });
  });

  it('prunes breakers closed for a day, every version at once, and keeps open and reopened ones', async () => {
    const c = clock(T0 - 30 * 24 * 3_600_000); // before every other test's events: the cutoff leaves theirs alone
    const log = await openAuditLog(store.client, { now: c.now });
    const bus = new DecisionBus({ now: c.now });
    const over = evaluateThresholds({ toolCallsPerMinute: 120 }, { toolCallsPerMinute: 60 }, 0.5);
    const record = async (breaker: CircuitBreaker, transitions: ReturnType<CircuitBreaker['evaluate']>) => {
      for (const t of transitions) await log.append(breakerTransitionEvent(t, bus.publish(breaker.decision())));
    };
    const key = (runId: string) => ({ tenantId: 'prune', scope: 'RUN' as const, runId });
    const closed = new CircuitBreaker(key('closed'), c.now);
    const reopened = new CircuitBreaker(key('reopened'), c.now);
    const open = new CircuitBreaker(key('open'), c.now);
    await record(closed, closed.evaluate(over, settings));
    await record(reopened, reopened.evaluate(over, settings));
    await record(closed, [closed.reset('alice')]);
    await record(reopened, [reopened.reset('alice')]);
    c.advance(25 * 3_600_000);
    await record(reopened, reopened.evaluate(over, settings));
    await record(open, open.evaluate(over, settings));

    expect(await log.pruneClosedBreakers()).toBe(1);
    const rows = await queryRows<{ RunId: string; Versions: string }>(
      store.client,
      "SELECT RunId, toString(count()) AS Versions FROM breaker_state WHERE TenantId = 'prune' GROUP BY RunId ORDER BY RunId",
    );
    expect(rows.map((r) => r.RunId)).toEqual(['open', 'reopened']);
    const restored = (await log.restoreBreakers()).filter((r) => r.key.tenantId === 'prune').map((r) => r.key.runId);
    expect(restored.sort()).toEqual(['open', 'reopened']);
    expect(await log.pruneClosedBreakers()).toBe(0);
  });

  /** The real store, whose writes wait for `open()` and can be made to fail after landing. */
  function gatedStore() {
    const real = new ClickHouseAuditStore(store.client);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const state = { failAfterLanding: 0, writes: 0 };
    const gated: AuditStore = Object.assign(Object.create(real) as AuditStore, {
      async write(batch: AuditBatch) {
        await gate;
        state.writes++;
        await real.write(batch);
        if (state.failAfterLanding > 0) {
          state.failAfterLanding--;
          throw new Error('connection reset after the insert landed');
        }
      },
    });
    return { gated, open: release, state };
  }

  const operatorEvent = (tenantId: string, i: number) => ({ tenantId, kind: 'operator_action' as const, actor: 'alice', reason: `manual ${i}` });
  const runTransition = (tenantId: string, runId: string, i: number) => ({
    tenantId,
    kind: 'breaker_transition' as const,
    scope: 'RUN',
    runId,
    oldState: i % 2 ? 'OPEN' : 'HALF_OPEN',
    newState: i % 2 ? 'HALF_OPEN' : 'OPEN',
    actor: 'breakwater',
    reason: `transition ${i}`,
  });

  async function storedCount(tenantId: string): Promise<number> {
    const [row] = await queryRows<{ n: string }>(store.client, 'SELECT toString(count()) AS n FROM audit_events WHERE TenantId = {t:String}', { t: tenantId });
    return Number(row!.n);
  }

  it('replays a killed writer\'s write-ahead log once, however often it is opened', async () => {
    const walDir = mkdtempSync(join(tmpdir(), 'bw-audit-wal-'));
    const { gated } = gatedStore(); // never opens: the process dies with every event unwritten
    const { log: killed } = await AuditLogClass.open(gated, { walDir });
    const recorded = [1, 2, 3, 4, 5].map((i) => killed.record(operatorEvent('replayed', i))!);
    expect(recorded.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(await storedCount('replayed')).toBe(0);

    const first = await AuditLogClass.open(new ClickHouseAuditStore(store.client), { walDir });
    expect(first.replayed).toBe(5);
    expect(await first.log.verify('replayed')).toEqual({ ok: true, events: 5 });
    expect(await first.log.list('replayed', { order: 'asc' })).toEqual(recorded);
    const second = await AuditLogClass.open(new ClickHouseAuditStore(store.client), { walDir });
    expect(second.replayed).toBe(0);
    expect(await storedCount('replayed')).toBe(5);
    // The chain goes on from the replayed head.
    expect((await second.log.append(operatorEvent('replayed', 6))).seq).toBe(6);
    expect(await second.log.verify('replayed')).toEqual({ ok: true, events: 6 });
  });

  it('retries a write whose answer was lost without storing any Seq twice', async () => {
    const { gated, open, state } = gatedStore();
    state.failAfterLanding = 1;
    const errors: string[] = [];
    const { log } = await AuditLogClass.open(gated, { walDir: mkdtempSync(join(tmpdir(), 'bw-audit-wal-')), onFlushError: (e) => errors.push(e.message) });
    open();
    const appended = await Promise.all([1, 2, 3].map((i) => log.append(operatorEvent('lost-answer', i))));
    expect(appended.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(errors).toEqual(['connection reset after the insert landed']);
    expect(state.writes).toBe(2);
    expect(await storedCount('lost-answer')).toBe(3);
    expect(await log.verify('lost-answer')).toEqual({ ok: true, events: 3 });
  });

  it('coalesces automated run transitions over the queue bound, never operator events, and keeps the count', async () => {
    const { gated, open } = gatedStore();
    let coalesced = 0;
    let written = 0;
    const depths: number[] = [];
    const { log } = await AuditLogClass.open(gated, {
      walDir: mkdtempSync(join(tmpdir(), 'bw-audit-wal-')),
      coalesceAbove: 3,
      onCoalesced: () => coalesced++,
      onQueueDepth: (n) => depths.push(n),
      onWritten: (batch) => (written += batch.events.length),
    });
    for (let i = 1; i <= 3; i++) log.record(operatorEvent('storm', i));
    const chained: number[] = [];
    for (let i = 1; i <= 5; i++) expect(log.record(runTransition('storm', 'loop', i), (e) => chained.push(e.seq))).toBeUndefined();
    expect(log.record(runTransition('storm', 'other', 1))).toBeUndefined();
    expect(log.record(operatorEvent('storm', 4))?.seq).toBe(4);
    expect(coalesced).toBe(6);
    expect(Math.max(...depths)).toBe(4);

    open();
    await log.flush();
    const events = await log.list('storm', { order: 'asc' });
    expect(events.map((e) => e.kind)).toEqual(['operator_action', 'operator_action', 'operator_action', 'operator_action', 'breaker_transition', 'breaker_transition']);
    const loop = events.find((e) => e.runId === 'loop')!;
    expect(JSON.parse(loop.details).coalesced).toMatchObject({ transitions: 5, firstFrom: 'OPEN' });
    expect(loop.reason).toBe('transition 5');
    expect(chained).toEqual([loop.seq]);
    expect(await log.verify('storm')).toEqual({ ok: true, events: 6 });
    expect(written).toBe(6);
  });

  it('writes again the heads and breaker states of a batch killed after its events landed', async () => {
    const walDir = mkdtempSync(join(tmpdir(), 'bw-audit-wal-'));
    const real = new ClickHouseAuditStore(store.client);
    // The process dies between the batch's events insert and its heads and breaker states.
    const dying: AuditStore = Object.assign(Object.create(real) as AuditStore, {
      async write(batch: AuditBatch) {
        await real.write({ events: batch.events, heads: new Map(), breakerStates: [] });
        await new Promise(() => {});
      },
    });
    const c = clock();
    const { log: killed } = await AuditLogClass.open(dying, { walDir, now: c.now, batchMaxDelayMs: 1 });
    const bus = new DecisionBus({ now: c.now });
    const breaker = new CircuitBreaker({ tenantId: 'half-written', scope: 'RUN', runId: 'r' }, c.now);
    const over = evaluateThresholds({ toolCallsPerMinute: 120 }, { toolCallsPerMinute: 60 }, 0.5);
    for (const t of breaker.evaluate(over, settings)) killed.record(breakerTransitionEvent(t, bus.publish(breaker.decision())));
    while ((await storedCount('half-written')) === 0) await new Promise((r) => setTimeout(r, 10));

    const { log, replayed } = await AuditLogClass.open(real, { walDir, now: c.now });
    expect(replayed).toBe(0);
    expect(await log.verify('half-written')).toEqual({ ok: true, events: 1 });
    expect((await log.restoreBreakers()).filter((b) => b.key.tenantId === 'half-written').map((b) => b.snapshot.state)).toEqual(['OPEN']);
  });
});
