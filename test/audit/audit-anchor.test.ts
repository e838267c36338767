import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/app/log.js';
import { AuditAnchor } from '../../src/audit/audit-anchor.js';
import { checkpointHash, type Checkpoint } from '../../src/audit/audit-checkpoint.js';
import { eventHash, PLATFORM_AUDIT_TENANT, type AuditEvent } from '../../src/audit/audit-event.js';
import { checkAuditAtStart, verifyAllChains, type IntegrityOptions } from '../../src/audit/audit-integrity.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditStore } from '../../src/audit/audit-store.js';
import { CircuitBreaker } from '../../src/breakers/circuit-breaker.js';
import { breakerTransitionEvent } from '../../src/breakers/transition-events.js';
import { DecisionBus } from '../../src/decisions/decision-bus.js';
import { openStore, queryRows, type Store } from '../../src/storage/clickhouse.js';
import { migrate } from '../../src/storage/migrations.js';
import { ClickHouseAuditStore } from '../../src/storage/repositories/clickhouse-audit-store.js';

// Someone with write access to ClickHouse (and not to Breakwater's host) tampers with the audit
// tables between two runs of Breakwater; the next start must notice each change, say what it was,
// and keep the breakers whose history was deleted.

const KEY = Buffer.from('audit-key-for-tests-0123456789abcdef');
const silent = createLogger('silent');

// chdb binds one data directory per process: this file opens one store and shares it.
let dataDir: string;
let store: Store;
let auditStore: ClickHouseAuditStore;
let anchorFile: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'bw-anchor-'));
  store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir });
  await migrate(store.client);
  auditStore = new ClickHouseAuditStore(store.client);
});

afterAll(async () => {
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(async () => {
  // the checkpoint chain is platform-wide: each case starts a new one, with its own anchor file
  await store.client.command({ query: 'TRUNCATE TABLE audit_checkpoints' });
  anchorFile = join(mkdtempSync(join(tmpdir(), 'bw-anchor-file-')), 'audit-anchor.json');
});

interface Booted {
  log: AuditLog;
  anchor: AuditAnchor;
  integrity: IntegrityOptions;
  report: Awaited<ReturnType<typeof checkAuditAtStart>>;
  failures: number;
}

/** What the service does at start: anchor, audit log, check. */
async function boot(key = KEY, on: AuditStore = auditStore): Promise<Booted> {
  const anchor = await AuditAnchor.open(on, { key, anchorFile });
  const { log } = await AuditLog.open(on, { walDir: mkdtempSync(join(tmpdir(), 'bw-anchor-wal-')), anchor, onWritten: (batch) => anchor.observe(batch) });
  const booted = { log, anchor, failures: -1 } as Booted;
  booted.integrity = { store: on, anchor, audit: log, log: silent, onFailures: (n) => (booted.failures = n) };
  booted.report = await checkAuditAtStart(booted.integrity);
  return booted;
}

/** Stops like the service: the log first, then a last checkpoint. */
async function shutdown(b: Booted): Promise<void> {
  await b.log.close();
  await b.anchor.close();
}

async function operatorEvents(log: AuditLog, tenantId: string, n: number): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for (let i = 1; i <= n; i++) events.push(await log.append({ tenantId, kind: 'operator_action', actor: 'alice', reason: `action ${i}` }));
  return events;
}

/** A platform operator's forced-open TENANT breaker, recorded as the engine records it. */
async function forceOpen(log: AuditLog, tenantId: string): Promise<CircuitBreaker> {
  const bus = new DecisionBus({ now: Date.now });
  const breaker = new CircuitBreaker({ tenantId, scope: 'TENANT' }, Date.now);
  const transition = breaker.forceOpen('platform incident 7', 'ops', Date.now() + 600_000);
  await log.append(breakerTransitionEvent(transition, bus.publish(breaker.decision())));
  return breaker;
}

async function sql(query: string, params: Record<string, unknown> = {}): Promise<void> {
  await store.client.command({ query: `${query} SETTINGS mutations_sync = 2`, query_params: params });
}

async function integrityEvents(log: AuditLog, tenantId: string): Promise<AuditEvent[]> {
  return log.list(tenantId, { kinds: ['audit_integrity'], order: 'asc' });
}

describe('audit checkpoints against someone who can write ClickHouse', () => {
  it('verify an untouched history across restarts, and sign only what moved', async () => {
    const first = await boot();
    await operatorEvents(first.log, 'calm', 3);
    await forceOpen(first.log, 'calm');
    await shutdown(first);
    const link = JSON.parse(readFileSync(anchorFile, 'utf8')) as { seq: number };
    expect(link.seq).toBe(1);

    const second = await boot();
    expect(second.report).toEqual({ checkpoints: 1, tenants: [], kept: [] });
    expect(second.failures).toBe(0);
    expect(await second.log.verify('calm')).toEqual({ ok: true, events: 4 });
    await shutdown(second); // nothing moved: no new checkpoint
    expect((await auditStore.checkpoints()).map((c) => c.seq)).toEqual([1]);
  });

  it('catch an event edited in place, in the whole-chain verification after start', async () => {
    const first = await boot();
    await operatorEvents(first.log, 'edited', 4);
    await shutdown(first);
    await sql("ALTER TABLE audit_events UPDATE Reason = 'nothing happened' WHERE TenantId = {t:String} AND Seq = 2", { t: 'edited' });

    const second = await boot();
    expect(await second.log.verify('edited')).toMatchObject({ ok: false, firstBadSeq: 2, problem: 'event 2 does not match its Hash: it was modified' });
    expect(await verifyAllChains(second.integrity, new Set(), () => false)).toContain('edited');
    expect((await integrityEvents(second.log, 'edited')).map((e) => e.reason)).toEqual(['event 2 does not match its Hash: it was modified']);
    await shutdown(second);
  });

  it('catch the newest events deleted together with the head rolled back', async () => {
    const first = await boot();
    const events = await operatorEvents(first.log, 'rolled-back', 4);
    await shutdown(first);
    await sql('ALTER TABLE audit_events DELETE WHERE TenantId = {t:String} AND Seq > 2', { t: 'rolled-back' });
    await sql('ALTER TABLE audit_heads DELETE WHERE TenantId = {t:String}', { t: 'rolled-back' });
    await auditStore.write({ events: [], heads: new Map([['rolled-back', { seq: 2, hash: events[1]!.hash, eventTime: events[1]!.eventTime }]]), breakerStates: [] });

    const second = await boot();
    expect(second.report.tenants).toEqual([
      { tenantId: 'rolled-back', problem: 'event 4, anchored by signed checkpoint #1, is missing: deleted', checkpoint: 1, anchoredSeq: 4 },
    ]);
    expect(second.failures).toBe(1);
    // the chain goes on after the anchored head, so the gap stays visible
    const [recorded] = await integrityEvents(second.log, 'rolled-back');
    expect(recorded!.seq).toBe(5);
    expect(await second.log.verify('rolled-back')).toMatchObject({ ok: false, firstBadSeq: 3 });
    await shutdown(second);
  });

  it("catch a tenant's events, head and breaker state all deleted, and keep its OPEN breaker", async () => {
    const first = await boot();
    await operatorEvents(first.log, 'erased', 2);
    const breaker = await forceOpen(first.log, 'erased');
    await shutdown(first);
    for (const table of ['audit_events', 'audit_heads', 'breaker_state']) await sql(`ALTER TABLE ${table} DELETE WHERE TenantId = {t:String}`, { t: 'erased' });

    const second = await boot();
    expect(second.report.tenants.map((t) => t.problem)).toEqual(['event 3, anchored by signed checkpoint #1, is missing: deleted']);
    expect(second.report.kept).toMatchObject([{ tenantId: 'erased', scope: 'TENANT', state: 'FORCED_OPEN', why: "its tenant's audit history failed verification" }]);
    const restored = (await second.log.restoreBreakers()).filter((r) => r.key.tenantId === 'erased');
    expect(restored.map((r) => r.snapshot)).toEqual([breaker.snapshot()]);
    expect((await integrityEvents(second.log, 'erased')).map((e) => e.newState)).toEqual(['', 'FORCED_OPEN']);
    expect(await second.log.verify('erased')).toMatchObject({ ok: false, firstBadSeq: 1, problem: 'events 1..3 are missing: deleted' });
    await shutdown(second);

    // the next start finds the breaker stored again, and the chain still shows its gap
    const third = await boot();
    expect(third.report.kept).toEqual([]);
    expect((await third.log.restoreBreakers()).filter((r) => r.key.tenantId === 'erased')).toHaveLength(1);
    expect(await verifyAllChains(third.integrity, new Set(), () => false)).toContain('erased');
    await shutdown(third);
  });

  it('keep a breaker whose stored state alone was deleted, though the chain is intact', async () => {
    const first = await boot();
    await forceOpen(first.log, 'state-only');
    await shutdown(first);
    await sql('ALTER TABLE breaker_state DELETE WHERE TenantId = {t:String}', { t: 'state-only' });

    const second = await boot();
    expect(second.report.tenants).toEqual([]);
    expect(second.report.kept).toMatchObject([{ tenantId: 'state-only', state: 'FORCED_OPEN', why: 'its stored state is gone, and no later audit event closed it' }]);
    expect((await second.log.restoreBreakers()).filter((r) => r.key.tenantId === 'state-only')).toHaveLength(1);
    await shutdown(second);
  });

  it('catch a rewrite that recomputes every hash and the head, which the chain alone accepts', async () => {
    const first = await boot();
    const events = await operatorEvents(first.log, 'rewritten', 4);
    await shutdown(first);
    let prevHash = '';
    const forged = events.map((event) => {
      const unhashed = { ...event, reason: event.seq === 2 ? 'nothing happened' : event.reason };
      const hash = eventHash(prevHash, unhashed);
      const link = { ...unhashed, prevHash, hash };
      prevHash = hash;
      return link;
    });
    await sql('ALTER TABLE audit_events DELETE WHERE TenantId = {t:String}', { t: 'rewritten' });
    await sql('ALTER TABLE audit_heads DELETE WHERE TenantId = {t:String}', { t: 'rewritten' });
    const last = forged.at(-1)!;
    await auditStore.write({ events: forged, heads: new Map([['rewritten', { seq: last.seq, hash: last.hash, eventTime: last.eventTime }]]), breakerStates: [] });
    // without the anchor the rewrite is invisible
    const unanchored = await AuditLog.open(auditStore, { walDir: mkdtempSync(join(tmpdir(), 'bw-anchor-wal-')) });
    expect(await unanchored.log.verify('rewritten')).toEqual({ ok: true, events: 4 });
    await unanchored.log.close();

    const second = await boot();
    expect(second.report.tenants.map((t) => t.problem)).toEqual(['event 4 differs from what signed checkpoint #1 anchored: the chain was rewritten']);
    expect(await second.log.verify('rewritten')).toMatchObject({ ok: false, firstBadSeq: 4 });
    await shutdown(second);
  });

  it('catch a checkpoint deleted from the middle of the chain', async () => {
    const first = await boot();
    for (let i = 0; i < 3; i++) {
      await operatorEvents(first.log, 'middle', 1);
      await first.anchor.checkpoint();
    }
    await shutdown(first);
    expect((await auditStore.checkpoints()).map((c) => c.seq)).toEqual([1, 2, 3]);
    await sql('ALTER TABLE audit_checkpoints DELETE WHERE Seq = 2');

    const second = await boot();
    expect(second.report.chainProblem).toBe('audit checkpoint #2 is missing: deleted');
    expect(second.failures).toBe(1);
    expect((await integrityEvents(second.log, PLATFORM_AUDIT_TENANT)).map((e) => e.reason)).toEqual(['audit checkpoint #2 is missing: deleted']);
    await shutdown(second);
    // new checkpoints go after the stored ones: the hole is not filled in
    expect((await auditStore.checkpoints()).map((c) => c.seq)).toEqual([1, 3, 4]);
  });

  it('catch the newest checkpoint deleted with the events it anchored, through the anchor file', async () => {
    const first = await boot();
    await operatorEvents(first.log, 'newest', 2);
    await first.anchor.checkpoint();
    await operatorEvents(first.log, 'newest', 2);
    await shutdown(first);
    await sql('ALTER TABLE audit_checkpoints DELETE WHERE Seq = 2');
    await sql('ALTER TABLE audit_events DELETE WHERE TenantId = {t:String} AND Seq > 2', { t: 'newest' });
    await sql('ALTER TABLE audit_heads DELETE WHERE TenantId = {t:String}', { t: 'newest' });

    const second = await boot();
    expect(second.report.chainProblem).toBe('the anchor file names audit checkpoint #2 but the newest stored is #1: the newest checkpoints were deleted');
    await shutdown(second);
  });

  it('refuse a checkpoint forged without the key, and a wrong key', async () => {
    const first = await boot();
    await operatorEvents(first.log, 'forged', 2);
    await shutdown(first);
    const [checkpoint] = await auditStore.checkpoints();
    // the forger knows the format: it drops the tenant and recomputes the hash, but cannot sign
    const body = JSON.stringify({ at: checkpoint!.at, entries: [] });
    await sql('ALTER TABLE audit_checkpoints UPDATE Body = {body:String}, Hash = {hash:String} WHERE Seq = 1', { body, hash: checkpointHash(1, '', body) });

    const second = await boot();
    expect(second.report.chainProblem).toBe('audit checkpoint #1 is not signed with the audit key: forged, or the key changed');
    await shutdown(second);

    const wrongKey = await boot(Buffer.from('another-key-entirely-0123456789abcdef'));
    expect(wrongKey.report.chainProblem).toMatch(/not signed with the audit key/);
    await shutdown(wrongKey);
  });

  it('refuse an anchor file that was edited or damaged', async () => {
    const first = await boot();
    await operatorEvents(first.log, 'anchor-file', 1);
    await shutdown(first);
    const link = JSON.parse(readFileSync(anchorFile, 'utf8')) as { seq: number; hash: string; mac: string };
    writeFileSync(anchorFile, JSON.stringify({ ...link, hash: 'f'.repeat(64) }));
    const edited = await boot();
    expect(edited.report.chainProblem).toBe('the audit anchor file is not signed with the audit key: forged, or the key changed');
    await shutdown(edited);

    writeFileSync(anchorFile, '{"seq": 1, "hash": "');
    const damaged = await boot();
    expect(damaged.report.chainProblem).toMatch(/is not a checkpoint link: damaged or replaced$/);
    await shutdown(damaged);
  });

  it('write a checkpoint whose answer was lost again as the same one, never a second with its Seq', async () => {
    let lost = 1;
    const flaky: AuditStore = Object.assign(Object.create(auditStore) as AuditStore, {
      async writeCheckpoint(checkpoint: Checkpoint) {
        await auditStore.writeCheckpoint(checkpoint);
        if (lost-- > 0) throw new Error('connection reset after the insert landed');
      },
    });
    const first = await boot(KEY, flaky);
    await operatorEvents(first.log, 'lost-answer', 1);
    await first.anchor.checkpoint(); // landed, answer lost
    await operatorEvents(first.log, 'lost-answer', 1);
    await first.anchor.checkpoint(); // the same #1 again
    await shutdown(first); // then #2 with the second event
    expect((await auditStore.checkpoints()).map((c) => c.seq)).toEqual([1, 1, 2]);

    const second = await boot();
    expect(second.report).toMatchObject({ checkpoints: 2, tenants: [] });
    expect(second.report.chainProblem).toBeUndefined();
    await shutdown(second);
  });

  it('keep no signing key in ClickHouse', async () => {
    const first = await boot();
    await operatorEvents(first.log, 'keyless', 1);
    await shutdown(first);
    const key = KEY.toString('utf8');
    const rows = await queryRows<{ N: string }>(
      store.client,
      `SELECT toString(count()) AS N FROM (
         SELECT Body AS text FROM audit_checkpoints UNION ALL SELECT Mac FROM audit_checkpoints UNION ALL SELECT Details FROM audit_events
       ) WHERE position(text, {key:String}) > 0`,
      { key },
    );
    expect(rows[0]!.N).toBe('0');
  });
});
