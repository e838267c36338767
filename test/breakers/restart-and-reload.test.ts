import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { storeOptions, type Service } from '../../src/app/service.js';
import type { Tightening } from '../../src/policy/tighten-only.js';
import { openStore } from '../../src/storage/clickhouse.js';
import { gql } from '../helpers/graphql.js';
import { startTestService, tempDataDir, testConfig } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

const dataDir = tempDataDir();
const POLICY = `
tiers:
  free:
    run: { toolCallsPerMinute: 5 }
    breaker: { cooldownMs: 600000, maxCooldownMs: 600000 }
`;
const policyFile = writePolicy(dataDir, POLICY);
let service: Service | undefined;

afterAll(async () => {
  await service?.stop();
});

async function start(): Promise<Service> {
  service = await startTestService({ dataDir, policyFile, policyFileExplicit: true });
  return service;
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('breaker state and run-time policy survive a restart; the policy file reloads live', () => {
  it('an OPEN breaker stays OPEN across a restart, with its cooldown', async () => {
    const first = await start();
    expect((await postSpans(first.otlpUrl, runSteps('restart-t', 'stuck', Array.from({ length: 6 }, () => ({ tool: 'loop' }))))).status).toBe(200);
    const before = first.core.bus.latest('restart-t', 'stuck');
    expect(before).toMatchObject({ action: 'HALT', state: 'OPEN' });
    // The transition is written to the audit log off the decision path; wait for it before stopping.
    await waitFor(async () => (await first.core.audit.list('restart-t')).length > 0, 'the audit event');
    const outcome = await first.core.runtimePolicy.change({ kind: 'setTenantPolicy', tenantId: 'restart-t', overrides: { run: { stepCount: 77 } } }, 'test');
    expect(outcome.ok).toBe(true);
    await first.stop();

    const second = await start();
    const after = second.core.bus.latest('restart-t', 'stuck');
    expect(after).toMatchObject({ action: 'HALT', state: 'OPEN', metric: 'toolCallsPerMinute', threshold: 5 });
    expect(after.retryAfterMs).toBeGreaterThan(500_000);
    expect(after.sequence).toBeGreaterThan(before.sequence);
    expect(second.core.policy.forTenant('restart-t').run.stepCount).toBe(77);
    expect((await second.core.audit.verify('restart-t')).ok).toBe(true);
  });

  it('reloads the policy file on change, keeps run-time changes over it, and keeps the last good policy on a bad file', async () => {
    const current = service!;
    writeFileSync(policyFile, 'tiers:\n  free:\n    run: { toolCallsPerMinute: 9 }\n');
    await waitFor(() => current.core.policy.forTenant('other').run.toolCallsPerMinute === 9, 'the reload');
    expect(current.core.policy.forTenant('restart-t').run.stepCount).toBe(77);

    writeFileSync(policyFile, 'tiers:\n  free:\n    run: { toolCallsPerMinute: -1 }\n');
    await waitFor(() => current.core.policy.lastReloadError !== undefined, 'the refused reload');
    expect(current.core.policy.lastReloadError!.message).toMatch(/breakwater.yaml:3:\d+ tiers.free.run.toolCallsPerMinute/);
    expect(current.core.policy.forTenant('other').run.toolCallsPerMinute).toBe(9);
  });

  it("replays a tenant admin's stream of tightenings as one change, to the same policy", async () => {
    const first = service!;
    writeFileSync(policyFile, POLICY);
    await waitFor(() => first.core.policy.lastReloadError === undefined && first.core.policy.forTenant('other').run.toolCallsPerMinute === 5, 'the reload');
    const ownChanges = (s: Service) => s.core.runtimePolicy.changes().filter(({ change }) => 'tenantId' in change && change.tenantId === 'tight-t');
    for (let i = 0; i < 50; i++) {
      const patch: Tightening = { run: i % 2 === 0 ? { stepCount: 90 - i } : { toolCallsPerMinute: 4 } };
      expect((await first.core.runtimePolicy.change({ kind: 'tightenTenantPolicy', tenantId: 'tight-t', patch }, 'tenant-admin')).ok).toBe(true);
    }
    const before = first.core.policy.forTenant('tight-t').run;
    expect(before).toMatchObject({ stepCount: 42, toolCallsPerMinute: 4 });
    expect(ownChanges(first)).toHaveLength(1);
    await first.stop();

    const second = await start();
    expect(second.core.policy.forTenant('tight-t').run).toEqual(before);
    // the first test made change 1; these were 2 to 51, read back in numeric order
    expect(ownChanges(second)).toMatchObject([{ seq: 51, actor: 'tenant-admin', change: { patch: { run: { stepCount: 42, toolCallsPerMinute: 4 } } } }]);
    expect((await second.core.runtimePolicy.change({ kind: 'tightenTenantPolicy', tenantId: 'tight-t', patch: { run: { stepCount: 41 } } }, 'tenant-admin')).ok).toBe(true);
    expect(ownChanges(second)).toMatchObject([{ seq: 52, change: { patch: { run: { stepCount: 41, toolCallsPerMinute: 4 } } } }]);
  });
});

// The case on a running service: an insider deletes a tenant's audit events, its head and
// its breaker state in ClickHouse; before anchoring, its 10-minute OPEN breaker came back CLOSED at
// the next start and verifyAuditLog answered ok. Now the start keeps it OPEN and reports.
const TENANT = 'tamper-t';

describe('a tenant whose audit history is deleted in ClickHouse', () => {
  it('keeps its OPEN breaker across the restart, and says so in its own log, in verifyAuditLog and in /metrics', async () => {
    await service?.stop();
    writeFileSync(policyFile, POLICY); // the case before left a refused file behind
    const first = await start();
    expect((await postSpans(first.otlpUrl, runSteps(TENANT, 'stuck', Array.from({ length: 6 }, () => ({ tool: 'loop' }))))).status).toBe(200);
    expect(first.core.bus.latest(TENANT, 'stuck')).toMatchObject({ action: 'HALT', state: 'OPEN' });
    await waitFor(async () => (await first.core.audit.list(TENANT)).length > 0, 'the audit event');
    await first.stop(); // the last checkpoint anchors the tenant's head and its OPEN breaker

    // a start that replays nothing empties the local write-ahead log, which would put recent events back
    await (await start()).stop();
    // the insider works while Breakwater is down, straight on its ClickHouse
    const clickhouse = await openStore(storeOptions(testConfig({ dataDir, policyFile })));
    for (const table of ['audit_events', 'audit_heads', 'breaker_state']) {
      await clickhouse.client.command({ query: `ALTER TABLE ${table} DELETE WHERE TenantId = {t:String} SETTINGS mutations_sync = 2`, query_params: { t: TENANT } });
    }
    await clickhouse.close();

    const third = await start();
    expect(third.core.bus.latest(TENANT, 'stuck')).toMatchObject({ action: 'HALT', state: 'OPEN', metric: 'toolCallsPerMinute', threshold: 5 });
    const answer = await gql<{ verifyAuditLog: { ok: boolean; problem: string }; tenant: { auditEvents: { kind: string; reason: string }[] } }>(
      third.graphqlUrl,
      `query ($t: String!) {
         verifyAuditLog(tenantId: $t) { ok problem }
         tenant(id: $t) { auditEvents(kinds: ["audit_integrity"]) { kind reason } }
       }`,
      { t: TENANT },
    );
    expect(answer.data!.verifyAuditLog).toEqual({ ok: false, problem: 'event 1 is missing: deleted' });
    // the cases before wrote checkpoints of their own: which one anchored this tenant varies
    expect(answer.data!.tenant.auditEvents.map((e) => e.reason.replace(/#\d+/, '#N')).sort()).toEqual([
      "breaker kept OPEN as signed checkpoint #N had it: its tenant's audit history failed verification",
      'event 1, anchored by signed checkpoint #N, is missing: deleted',
    ]);
    const metrics = await (await fetch(`${third.graphqlUrl}/metrics`)).text();
    expect(metrics).toMatch(/^breakwater_audit_integrity_failures 1$/m);
  });
});
