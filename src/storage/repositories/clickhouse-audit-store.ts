import type { ClickHouseClient } from '@clickhouse/client';
import type { Checkpoint } from '../../audit/audit-checkpoint.js';
import { GENESIS_HEAD, type AuditEvent, type AuditKind, type ChainHead } from '../../audit/audit-event.js';
import type { TripHistory, AuditBatch, AuditListQuery, AuditStore, BreakerStateRow } from '../../audit/audit-store.js';
import { queryRows } from '../clickhouse.js';

const MAX_LIST = 10_000;

// No alias may shadow a column: WHERE and ORDER BY would then compare the alias (a string Seq sorts
// "10" before "9"). 64-bit integers arrive as JSON strings or numbers, and Number() takes both.
const EVENT_COLUMNS = `TenantId, Seq, toUnixTimestamp64Milli(EventTime) AS EventTimeMs, Kind,
  RunId, Scope, Metric, Threshold, Observed, OldState, NewState, Actor, Reason, Details, PrevHash, Hash`;

interface EventRow {
  TenantId: string;
  Seq: string | number;
  EventTimeMs: string | number;
  Kind: string;
  RunId: string;
  Scope: string;
  Metric: string;
  Threshold: number | string;
  Observed: number | string;
  OldState: string;
  NewState: string;
  Actor: string;
  Reason: string;
  Details: string;
  PrevHash: string;
  Hash: string;
}

/** The audit log's tables in ClickHouse: audit_events, audit_heads, breaker_state, audit_checkpoints. */
export class ClickHouseAuditStore implements AuditStore {
  constructor(private readonly client: ClickHouseClient) {}

  async heads(): Promise<Map<string, ChainHead>> {
    // argMax over the rows instead of FINAL: correct before and after ReplacingMergeTree merges.
    const [events, heads] = await Promise.all([
      queryRows<{ TenantId: string; LastSeq: string; LastHash: string }>(
        this.client,
        'SELECT TenantId, toString(max(Seq)) AS LastSeq, argMax(Hash, Seq) AS LastHash FROM audit_events GROUP BY TenantId',
      ),
      queryRows<{ TenantId: string; LastSeq: string; LastHash: string }>(
        this.client,
        'SELECT TenantId, toString(max(Seq)) AS LastSeq, argMax(Hash, Seq) AS LastHash FROM audit_heads GROUP BY TenantId',
      ),
    ]);
    const result = new Map<string, ChainHead>();
    for (const row of events) result.set(row.TenantId, { seq: Number(row.LastSeq), hash: row.LastHash });
    // When the recorded head is ahead (newest events deleted), continuing from it keeps the gap
    // visible to verify() instead of quietly reusing the deleted Seqs.
    for (const row of heads) {
      const seq = Number(row.LastSeq);
      if (seq >= (result.get(row.TenantId) ?? GENESIS_HEAD).seq) result.set(row.TenantId, { seq, hash: row.LastHash });
    }
    return result;
  }

  async storedSeqs(tenantIds: readonly string[]): Promise<Map<string, number>> {
    if (tenantIds.length === 0) return new Map();
    const rows = await queryRows<{ TenantId: string; LastSeq: string }>(
      this.client,
      'SELECT TenantId, toString(max(Seq)) AS LastSeq FROM audit_events WHERE TenantId IN {tenants:Array(String)} GROUP BY TenantId',
      { tenants: [...tenantIds] },
    );
    return new Map(rows.map((r) => [r.TenantId, Number(r.LastSeq)]));
  }

  async write(batch: AuditBatch): Promise<void> {
    if (batch.events.length > 0) {
      await this.client.insert({ table: 'audit_events', values: batch.events.map(rowFromEvent), format: 'JSONEachRow' });
    }
    const heads = [...batch.heads].map(([tenantId, head]) => ({
      TenantId: tenantId,
      Seq: head.seq,
      Hash: head.hash,
      EventTime: clickhouseTime(head.eventTime),
    }));
    const states = batch.breakerStates.map((s) => ({
      TenantId: s.tenantId,
      Scope: s.scope,
      RunId: s.runId,
      State: s.state,
      Snapshot: s.snapshot,
      Seq: s.seq,
      UpdatedAt: clickhouseTime(s.updatedAt),
    }));
    await Promise.all([
      heads.length > 0 ? this.client.insert({ table: 'audit_heads', values: heads, format: 'JSONEachRow' }) : undefined,
      states.length > 0 ? this.client.insert({ table: 'breaker_state', values: states, format: 'JSONEachRow' }) : undefined,
    ]);
  }

  async list(tenantId: string, query: AuditListQuery): Promise<AuditEvent[]> {
    const where = ['TenantId = {tenantId:String}'];
    const params: Record<string, unknown> = { tenantId };
    if (query.from !== undefined) {
      where.push("EventTime >= fromUnixTimestamp64Milli({fromMs:Int64}, 'UTC')");
      params.fromMs = Math.floor(query.from);
    }
    if (query.to !== undefined) {
      where.push("EventTime < fromUnixTimestamp64Milli({toMs:Int64}, 'UTC')");
      params.toMs = Math.floor(query.to);
    }
    if (query.kinds !== undefined) {
      where.push('Kind IN {kinds:Array(String)}');
      params.kinds = [...query.kinds];
    }
    if (query.runId !== undefined) {
      where.push('RunId = {runId:String}');
      params.runId = query.runId;
    }
    if (query.beforeSeq !== undefined) {
      where.push('Seq < {beforeSeq:UInt64}');
      params.beforeSeq = Math.max(0, Math.floor(query.beforeSeq));
    }
    params.limit = Math.min(MAX_LIST, Math.max(1, Math.floor(query.limit ?? 100)));
    const order = query.order === 'asc' ? 'ASC' : 'DESC';
    const rows = await queryRows<EventRow>(
      this.client,
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE ${where.join(' AND ')} ORDER BY Seq ${order} LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map(eventFromRow);
  }

  async chainPage(tenantId: string, after: { seq: number; hash: string } | null, limit: number): Promise<AuditEvent[]> {
    // Keyset pages on (Seq, Hash): a duplicated Seq (an inserted event) is read, not skipped.
    const params: Record<string, unknown> = { tenantId, limit };
    let cursor = '';
    if (after) {
      cursor = 'AND (Seq, Hash) > ({afterSeq:UInt64}, {afterHash:String})';
      params.afterSeq = after.seq;
      params.afterHash = after.hash;
    }
    const rows = await queryRows<EventRow>(
      this.client,
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE TenantId = {tenantId:String} ${cursor}
       ORDER BY Seq, Hash LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map(eventFromRow);
  }

  async recordedHead(tenantId: string): Promise<ChainHead | null> {
    const [row] = await queryRows<{ LastSeq: string; LastHash: string; Rows: string }>(
      this.client,
      `SELECT toString(max(Seq)) AS LastSeq, argMax(Hash, Seq) AS LastHash, toString(count()) AS Rows
       FROM audit_heads WHERE TenantId = {tenantId:String}`,
      { tenantId },
    );
    return row && row.Rows !== '0' ? { seq: Number(row.LastSeq), hash: row.LastHash } : null;
  }

  async eventsAt(positions: readonly { tenantId: string; seq: number }[]): Promise<AuditEvent[]> {
    if (positions.length === 0) return [];
    const wanted = new Set(positions.map((p) => `${p.tenantId}\u0000${p.seq}`));
    // Tenants and Seqs bound separately, then the pairs picked out here: a superset, never a miss.
    const rows = await queryRows<EventRow>(
      this.client,
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE TenantId IN {tenants:Array(String)} AND Seq IN {seqs:Array(UInt64)} ORDER BY TenantId, Seq`,
      { tenants: [...new Set(positions.map((p) => p.tenantId))], seqs: [...new Set(positions.map((p) => p.seq))] },
    );
    return rows.map(eventFromRow).filter((e) => wanted.has(`${e.tenantId}\u0000${e.seq}`));
  }

  async checkpoints(): Promise<Checkpoint[]> {
    const rows = await queryRows<{ Seq: string; At: string | number; PrevHash: string; Body: string; Hash: string; Mac: string }>(
      this.client,
      'SELECT toString(Seq) AS Seq, toUnixTimestamp64Milli(CreatedAt) AS At, PrevHash, Body, Hash, Mac FROM audit_checkpoints ORDER BY Seq, Hash',
    );
    return rows.map((r) => ({ seq: Number(r.Seq), at: Number(r.At), prevHash: r.PrevHash, body: r.Body, hash: r.Hash, mac: r.Mac }));
  }

  async writeCheckpoint(checkpoint: Checkpoint): Promise<void> {
    await this.client.insert({
      table: 'audit_checkpoints',
      values: [{ Seq: checkpoint.seq, CreatedAt: clickhouseTime(checkpoint.at), PrevHash: checkpoint.prevHash, Body: checkpoint.body, Hash: checkpoint.hash, Mac: checkpoint.mac }],
      format: 'JSONEachRow',
    });
  }

  async openBreakers(): Promise<BreakerStateRow[]> {
    const rows = await queryRows<{ TenantId: string; Scope: string; RunId: string; LastState: string; LastSnapshot: string; LastSeq: string; LastTime: string | number }>(
      this.client,
      `SELECT TenantId, Scope, RunId, argMax(State, Seq) AS LastState, argMax(Snapshot, Seq) AS LastSnapshot,
              toString(max(Seq)) AS LastSeq, toUnixTimestamp64Milli(max(UpdatedAt)) AS LastTime
       FROM breaker_state GROUP BY TenantId, Scope, RunId HAVING LastState != 'CLOSED'`,
    );
    return rows.map((r) => ({
      tenantId: r.TenantId,
      scope: r.Scope,
      runId: r.RunId,
      state: r.LastState,
      snapshot: r.LastSnapshot,
      seq: Number(r.LastSeq),
      updatedAt: Number(r.LastTime),
    }));
  }

  async tripHistory(sinceMs: number): Promise<TripHistory> {
    const tripRows = await queryRows<{ TenantId: string; Times: (string | number)[] }>(
      this.client,
      `SELECT TenantId, arraySort(groupArrayIf(toUnixTimestamp64Milli(EventTime), Kind = 'breaker_transition' AND EventTime > LastAck)) AS Times
       FROM audit_events
       LEFT JOIN (SELECT TenantId, max(EventTime) AS LastAck FROM audit_events WHERE Kind = 'escalation_ack' GROUP BY TenantId) AS acks USING TenantId
       WHERE Kind = 'breaker_transition' AND NewState = 'OPEN' AND EventTime >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
       GROUP BY TenantId`,
      { since: Math.floor(sinceMs) },
    );
    const escalatedRows = await queryRows<{ TenantId: string }>(
      this.client,
      `SELECT TenantId FROM audit_events WHERE Kind IN ('escalation', 'escalation_ack')
       GROUP BY TenantId HAVING argMax(Kind, Seq) = 'escalation'`,
    );
    const trips = new Map<string, number[]>();
    for (const row of tripRows) if (row.Times.length > 0) trips.set(row.TenantId, row.Times.map(Number));
    return { trips, escalated: escalatedRows.map((r) => r.TenantId) };
  }

  async pruneClosedBreakers(beforeMs: number): Promise<number> {
    // Every version of a key goes at once, and only versions as old as its CLOSED row: a breaker
    // that reopened since has a newer row, which neither condition matches.
    const closed = `SELECT TenantId, Scope, RunId FROM breaker_state GROUP BY TenantId, Scope, RunId
       HAVING argMax(State, Seq) = 'CLOSED' AND max(UpdatedAt) < fromUnixTimestamp64Milli({before:Int64}, 'UTC')`;
    const [row] = await queryRows<{ N: string }>(this.client, `SELECT toString(count()) AS N FROM (${closed})`, { before: beforeMs });
    if (row === undefined || row.N === '0') return 0;
    await this.client.command({
      query: `DELETE FROM breaker_state WHERE UpdatedAt < fromUnixTimestamp64Milli({before:Int64}, 'UTC') AND (TenantId, Scope, RunId) IN (${closed})`,
      query_params: { before: beforeMs },
    });
    return Number(row.N);
  }
}

function rowFromEvent(event: AuditEvent): Record<string, unknown> {
  return {
    TenantId: event.tenantId,
    Seq: event.seq,
    EventTime: clickhouseTime(event.eventTime),
    Kind: event.kind,
    RunId: event.runId,
    Scope: event.scope,
    Metric: event.metric,
    Threshold: event.threshold,
    Observed: event.observed,
    OldState: event.oldState,
    NewState: event.newState,
    Actor: event.actor,
    Reason: event.reason,
    Details: event.details,
    PrevHash: event.prevHash,
    Hash: event.hash,
  };
}

function eventFromRow(row: EventRow): AuditEvent {
  return {
    tenantId: row.TenantId,
    seq: Number(row.Seq),
    eventTime: Number(row.EventTimeMs),
    // Read back as stored: a tampered Kind must reach verify() unchanged to fail it.
    kind: row.Kind as AuditKind,
    runId: row.RunId,
    scope: row.Scope,
    metric: row.Metric,
    threshold: Number(row.Threshold),
    observed: Number(row.Observed),
    oldState: row.OldState,
    newState: row.NewState,
    actor: row.Actor,
    reason: row.Reason,
    details: row.Details,
    prevHash: row.PrevHash,
    hash: row.Hash,
  };
}

/** 'YYYY-MM-DD hh:mm:ss.sss' in UTC: what a DateTime64(3, 'UTC') column parses without settings. */
function clickhouseTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}
