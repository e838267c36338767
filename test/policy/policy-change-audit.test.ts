import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { PLATFORM_AUDIT_TENANT, type AuditEvent } from '../../src/audit/audit-event.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

// File reloads and tier-wide changes are nobody's tenant change, yet they move tenants' limits:
// each affected tenant's own audit log must say so, with the values before and after.

const POLICY = (proToolCalls: number) => `
defaultTier: free
tiers:
  free:
    run: { toolCallsPerMinute: 40 }
  pro:
    run: { toolCallsPerMinute: ${proToolCalls} }
tenants:
  hospital: { tier: pro }
`;

const dataDir = tempDataDir();
const policyFile = writePolicy(dataDir, POLICY(300));
let service: Service;

beforeAll(async () => {
  service = await startTestService({ dataDir, policyFile, policyFileExplicit: true });
  // a tenant the file never names, known only from its spans
  expect((await postSpans(service.otlpUrl, runSteps('live-a', 'r1', [{ tool: 'search' }]))).status).toBe(200);
});

afterAll(async () => {
  await service?.stop();
});

/** The tenant's policy events once there are `count` (the events of one change are recorded together, so 0 waits for nothing). */
async function policyEvents(tenantId: string, count = 0): Promise<AuditEvent[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    await service.core.audit.flushed(tenantId);
    const events = await service.core.audit.list(tenantId, { kinds: ['policy_change'], order: 'asc' });
    if (events.length >= count || Date.now() > deadline) return events;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('changes that are not one tenant’s, in each affected tenant’s audit log', () => {
  it('records a tier-wide change in the platform log and in every tenant of that tier, and in no other', async () => {
    const outcome = await service.core.runtimePolicy.change({ kind: 'setTierThresholds', tier: 'free', patch: { run: { toolCallsPerMinute: 7 } } }, 'platform/admin#1');
    expect(outcome.ok).toBe(true);

    const [platform] = await policyEvents(PLATFORM_AUDIT_TENANT, 1);
    expect(platform).toMatchObject({ actor: 'platform/admin#1', reason: 'tier free thresholds changed' });
    expect(JSON.parse(platform!.details)).toMatchObject({ tenantsAffected: 1 });

    const [live] = await policyEvents('live-a', 1);
    expect(live).toMatchObject({ actor: 'platform/admin#1', reason: 'tier free thresholds changed: run.toolCallsPerMinute 40 -> 7' });
    expect(JSON.parse(live!.details)).toMatchObject({ changed: [{ path: 'run.toolCallsPerMinute', from: 40, to: 7 }], platformSeq: 1 });
    expect(await policyEvents('hospital')).toEqual([]);
  });

  it('records a successful file reload in the platform log and in each tenant it changed', async () => {
    writeFileSync(policyFile, POLICY(120));
    const [, reload] = await policyEvents(PLATFORM_AUDIT_TENANT, 2);
    expect(reload).toMatchObject({ actor: 'policy-file', reason: 'policy file reloaded; 1 tenant(s) affected' });

    const [hospital] = await policyEvents('hospital', 1);
    expect(hospital).toMatchObject({ actor: 'policy-file', reason: 'policy file reloaded: run.toolCallsPerMinute 300 -> 120' });
    expect(JSON.parse(hospital!.details)).toMatchObject({ source: 'file', file: policyFile });
    // the run-time change to tier free still stands over the file: live-a did not move
    expect(await policyEvents('live-a')).toHaveLength(1);
  });

  it('records nothing for a reload the service refused', async () => {
    writeFileSync(policyFile, POLICY(-1));
    const deadline = Date.now() + 5000;
    while (service.core.policy.lastReloadError === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(service.core.policy.lastReloadError).toBeDefined();
    expect(await policyEvents(PLATFORM_AUDIT_TENANT)).toHaveLength(2);
    expect(await policyEvents('hospital')).toHaveLength(1);
  });
});
