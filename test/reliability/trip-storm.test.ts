import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/storage/clickhouse.js';
import { startChildService, type ChildService } from '../helpers/child-service.js';
import { gql, subscribeSse, type SubscriptionHandle } from '../helpers/graphql.js';
import { recordingTracer } from '../helpers/otel.js';
import { tempDataDir } from '../helpers/service.js';

// A trip storm under the built-in default policy (no policy file: every tenant is on the free
// tier, whose runs trip at 30 tool calls a minute), as the incidents Breakwater exists for bring
// it: many tenants, each request tripping ten run breakers and soon its tenant's breaker too.

const TENANTS = 12;
const RUNS_PER_REQUEST = 10;
const STEPS_PER_RUN = 35;

interface Halt {
  tenantId: string;
  runId: string | null;
  scope: string;
  state: string;
}

/** One request of a tenant: ten fresh runs, each 35 tool calls (over the free tier's 30 a minute). */
function stormRequest(tenant: number, round: number): Uint8Array<ArrayBuffer> {
  const { tracer, finished } = recordingTracer({ 'tenant.id': `storm-${tenant}` });
  for (let r = 0; r < RUNS_PER_REQUEST; r++) {
    for (let i = 0; i < STEPS_PER_RUN; i++) {
      tracer.startSpan('tool', { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search', 'agent.run.id': `r${round}-${r}` } }).end();
    }
  }
  return new Uint8Array(ProtobufTraceSerializer.serializeRequest(finished())!);
}

const DECISIONS = `subscription ($tenantId: String!) { decisions(tenantId: $tenantId) { tenantId runId scope action state } }`;

function subscribeAll(server: ChildService): SubscriptionHandle<{ decisions: Halt & { action: string } }>[] {
  return Array.from({ length: TENANTS }, (_, t) => subscribeSse(server.graphqlUrl, DECISIONS, { tenantId: `storm-${t}` }));
}

/** Senders replaying storm requests until `until` resolves; returns how many were acknowledged. */
async function storm(server: ChildService, senders: number, stop: { now: boolean }): Promise<number> {
  let round = 0;
  let acked = 0;
  const sender = async () => {
    while (!stop.now) {
      const r = round++;
      const body = stormRequest(r % TENANTS, r);
      try {
        const res = await fetch(`${server.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
        await res.arrayBuffer();
        if (res.status === 200) acked++;
      } catch {
        return; // the server is gone
      }
    }
  };
  await Promise.all(Array.from({ length: senders }, sender));
  return acked;
}

function halts(subscriptions: SubscriptionHandle<{ decisions: Halt & { action: string } }>[]): Halt[] {
  return subscriptions.flatMap((s) => s.messages.map((m) => m.decisions)).filter((d) => d.action === 'HALT');
}

async function auditTransitions(dataDir: string): Promise<{ tenantId: string; runId: string; scope: string; newState: string }[]> {
  const store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir });
  try {
    const result = await store.client.query({
      query: "SELECT TenantId AS tenantId, RunId AS runId, Scope AS scope, NewState AS newState FROM audit_events WHERE TenantId LIKE 'storm-%' AND Kind = 'breaker_transition'",
      format: 'JSONEachRow',
    });
    return await result.json();
  } finally {
    await store.close();
  }
}

describe('a trip storm under the default policy', () => {
  it('loses no HALT a subscriber saw to a SIGKILL, and keeps every OPEN breaker OPEN after the restart', async () => {
    const dataDir = tempDataDir('bw-storm-');
    const args = ['--data-dir', dataDir];
    const server = await startChildService(args);
    const subscriptions = subscribeAll(server);
    await new Promise((r) => setTimeout(r, 500)); // the subscriptions are open

    const stop = { now: false };
    const sending = storm(server, 4, stop);
    // Kill once a few hundred transitions have been pushed, mid-storm.
    const deadline = Date.now() + 20_000;
    while (halts(subscriptions).length < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    server.process.kill('SIGKILL');
    await server.exited;
    stop.now = true;
    await sending;
    for (const s of subscriptions) s.close();

    const seen = halts(subscriptions);
    expect(seen.length, 'HALTs pushed before the kill').toBeGreaterThanOrEqual(300);

    const restarted = await startChildService(args);
    try {
      for (let t = 0; t < TENANTS; t++) {
        const verified = await gql<{ verifyAuditLog: { ok: boolean; events: number } }>(restarted.graphqlUrl, 'query ($t: String!) { verifyAuditLog(tenantId: $t) { ok events } }', { t: `storm-${t}` });
        expect(verified.data?.verifyAuditLog.ok, `storm-${t}'s chain verifies`).toBe(true);
      }
      // Every run seen halted still halts (the cooldown is 30 s; the restart takes a few).
      const runs = [...new Map(seen.filter((h) => h.runId !== null).map((h) => [`${h.tenantId}/${h.runId}`, h])).values()];
      const sample = runs.filter((_, i) => i % Math.ceil(runs.length / 40) === 0);
      for (const h of sample) {
        const answer = await gql<{ decision: { action: string; state: string } }>(restarted.graphqlUrl, 'query ($t: String!, $r: String) { decision(tenantId: $t, runId: $r) { action state } }', { t: h.tenantId, r: h.runId });
        expect(answer.data?.decision, `${h.tenantId}/${h.runId} after the restart`).toMatchObject({ action: 'HALT' });
      }
    } finally {
      restarted.process.kill('SIGTERM');
      expect(await restarted.exited).toBe(0);
    }

    const audited = await auditTransitions(dataDir);
    const openedKeys = new Set(audited.filter((a) => a.newState === 'OPEN').map((a) => `${a.tenantId}/${a.scope}/${a.runId}`));
    const missing = seen.filter((h) => !openedKeys.has(`${h.tenantId}/${h.scope}/${h.runId ?? ''}`));
    expect(missing, 'HALTs pushed to a subscriber with no OPEN transition in the audit log').toEqual([]);
  }, 120_000);

  it('stops within the shutdown deadline right after a storm, and writes the rest at the next start', async () => {
    const dataDir = tempDataDir('bw-storm-term-');
    const args = ['--data-dir', dataDir];
    const server = await startChildService(args);
    const stop = { now: false };
    const sending = storm(server, 4, stop);
    await new Promise((r) => setTimeout(r, 3_000));
    stop.now = true;
    const acked = await sending;
    expect(acked).toBeGreaterThan(10);

    const started = Date.now();
    server.process.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const stoppedInMs = Date.now() - started;
    expect(stoppedInMs, 'SIGTERM to exit, ms').toBeLessThanOrEqual(12_000);

    const transitions = await auditTransitions(dataDir);
    const restarted = await startChildService(args);
    try {
      const replayed = restarted.logs.find((l) => l.msg === 'audit events from the write-ahead log written');
      const stored = await gql<{ verifyAuditLog: { ok: boolean; events: number } }>(restarted.graphqlUrl, 'query { verifyAuditLog(tenantId: "storm-0") { ok events } }');
      expect(stored.data?.verifyAuditLog.ok).toBe(true);
      expect(transitions.length + Number(replayed?.events ?? 0)).toBeGreaterThan(acked);
    } finally {
      restarted.process.kill('SIGTERM');
      expect(await restarted.exited).toBe(0);
    }
  }, 120_000);
});
