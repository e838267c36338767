import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

const dataDir = tempDataDir();
const policyFile = writePolicy(
  dataDir,
  `
tiers:
  free:
    run: { toolCallsPerMinute: 5 }
    breaker: { cooldownMs: 600000, maxCooldownMs: 600000 }
`,
);
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
});
