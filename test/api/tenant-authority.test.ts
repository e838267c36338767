import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { gql } from '../helpers/graphql.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

// The attacks of issue 22, replayed over real HTTP against a running server: a tenant's agent token
// (the one the SDK holds) changes nothing; its admin token may only tighten; neither lifts what the
// platform or the policy opened; run-time changes merge into the file's entry and can be undone to
// exactly what the file says; effectivePolicy says where each value comes from; all of it survives a
// file reload and a restart.

const ADMIN = 'platform-admin-0123456789abcdef';
const H_ADMIN = 'hospital-admin-0123456789abcdef';
const H_AGENT = 'hospital-agent-0123456789abcdef';

const POLICY = (toolCallsPerMinute: number) => `
auth:
  adminTokens: ["${ADMIN}"]
  tenants:
    hospital: { adminTokens: ["${H_ADMIN}"], agentTokens: ["${H_AGENT}"] }
tenants:
  hospital:
    tier: free
    overrides: { run: { toolCallsPerMinute: ${toolCallsPerMinute}, stepCount: 50 } }
degradation:
  defaults:
    tiers:
      - { tier: 0, provider: openai, model: gpt-4o }
      - { tier: 1, provider: openai, model: gpt-4o-mini }
  tenants:
    hospital:
      consent: { required: true, fromTier: 1 }
      permittedTiers: [0, 1]
      quota: { requestsPerMinute: 100, tokensPerMinute: 50000 }
`;

const dataDir = tempDataDir('bw-tenant-authority-');
let policyPath: string;
let service: Service;
// what the file alone puts in force, before any run-time change
let fromFile: Report['effectivePolicy'];

async function start(): Promise<void> {
  service = await startTestService({ dataDir, policyFile: policyPath, policyFileExplicit: true });
}

beforeAll(async () => {
  policyPath = writePolicy(dataDir, POLICY(25));
  await start();
  fromFile = await report();
});

afterAll(async () => {
  await service?.stop();
});

const call = (query: string, token: string) => gql(service.graphqlUrl, query, {}, token);
const refusal = async (query: string, token: string) => {
  const res = await call(query, token);
  expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res)).toBe('FORBIDDEN');
  return { message: res.errors![0]!.message, rule: res.errors![0]!.extensions!.rule };
};
const ok = async <T = Record<string, unknown>>(query: string, token: string) => {
  const res = await gql<T>(service.graphqlUrl, query, {}, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
};

interface Report {
  effectivePolicy: {
    tier: string;
    policy: { run: { toolCallsPerMinute: number | null; stepCount: number | null } };
    degradation: { consent: { required: boolean; fromTier: number }; permittedTiers: number[]; quota: { requestsPerMinute: number; tokensPerMinute: number } };
    values: { path: string; value: unknown; source: string; detail: string; actor: string | null; changedAt: string | null }[];
  };
}
const REPORT = `{ effectivePolicy(tenantId: "hospital") {
  tier policy { run { toolCallsPerMinute stepCount } } degradation
  values { path value source detail actor changedAt } } }`;
const report = async () => (await ok<Report>(REPORT, ADMIN)).effectivePolicy;
const valueAt = (r: Report['effectivePolicy'], path: string) => r.values.find((v) => v.path === path)!;

const runDecision = async (runId: string) =>
  (await ok<{ decision: { action: string } }>(`{ decision(tenantId: "hospital", runId: "${runId}") { action } }`, ADMIN)).decision.action;

describe("an agent token changes nothing", () => {
  it.each([
    ['raise its run limits', 'mutation { setTenantPolicy(tenantId: "hospital", policy: { run: { toolCallsPerMinute: 1000000, tokenVelocity10s: 1e9 } }) { tier } }'],
    ['lower them either', 'mutation { setTenantPolicy(tenantId: "hospital", policy: { run: { toolCallsPerMinute: 1 } }) { tier } }'],
    ['switch its consent off', 'mutation { setTenantDegradation(tenantId: "hospital", policy: { consent: { required: false }, permittedTiers: [0, 1, 2, 3, 4] }) }'],
    ['approve its own downgrade', 'mutation { approveDegradation(tenantId: "hospital", requestId: "any") { decision { action } } }'],
    ['reset a breaker', 'mutation { resetBreaker(tenantId: "hospital", runId: "r") { state } }'],
    ['force one open', 'mutation { forceOpenBreaker(tenantId: "hospital", runId: "r", reason: "x") { state } }'],
    ['read the audit log', '{ tenant(id: "hospital") { auditEvents { reason } } }'],
  ])('may not %s', async (_, query) => {
    const { rule } = await refusal(query, H_AGENT);
    expect(rule).toMatch(/requires (tenantAdmin|platformAdmin)$/);
  });

  it('still reads its decisions and reserves quota', async () => {
    expect(await ok('{ decision(tenantId: "hospital") { action } }', H_AGENT)).toEqual({ decision: { action: 'ALLOW' } });
    expect(await ok('mutation { reserveQuota(tenantId: "hospital", tokens: 10) { granted } }', H_AGENT)).toEqual({ reserveQuota: { granted: true } });
  });
});

describe('a tenant admin may only tighten', () => {
  it.each([
    ['raise toolCallsPerMinute 40,000-fold', 'setTenantPolicy(tenantId: "hospital", policy: { run: { toolCallsPerMinute: 1000000 } }) { tier }', 'tenant admins may only tighten'],
    ['raise it by one', 'setTenantPolicy(tenantId: "hospital", policy: { run: { toolCallsPerMinute: 26 } }) { tier }', 'tenant admins may only tighten'],
    ['remove it', 'setTenantPolicy(tenantId: "hospital", policy: { run: { toolCallsPerMinute: null } }) { tier }', 'tenant admins may only tighten'],
    ['change its tier', 'setTenantPolicy(tenantId: "hospital", policy: { tier: "enterprise" }) { tier }', 'tenant admins may not change tier'],
    ['lengthen its cooldown settings', 'setTenantPolicy(tenantId: "hospital", policy: { breaker: { probeSteps: 100 } }) { tier }', 'tenant admins may not change breaker.probeSteps'],
    ['raise its quota bucket', 'setTenantDegradation(tenantId: "hospital", policy: { quota: { requestsPerMinute: 1000000 } })', 'tenant admins may only tighten'],
    ['switch consent off', 'setTenantDegradation(tenantId: "hospital", policy: { consent: { required: false } })', 'tenant admins may only tighten'],
    ['permit more tiers', 'setTenantDegradation(tenantId: "hospital", policy: { permittedTiers: [0, 1, 2, 3, 4] })', 'tenant admins may only tighten'],
    ['drop its degradation entry', 'setTenantDegradation(tenantId: "hospital", policy: null)', 'tenant admins may only tighten'],
    ['change tier-wide thresholds', 'setTierThresholds(tier: "free", thresholds: { run: { toolCallsPerMinute: 1000 } })', 'Mutation.setTierThresholds requires platformAdmin'],
    ['disable a breaker', 'disableBreaker(tenantId: "hospital", reason: "x") { state }', 'Mutation.disableBreaker requires platformAdmin'],
  ])('refuses to %s, with the rule', async (_, body, rule) => {
    const before = await report();
    expect((await refusal(`mutation { ${body} }`, H_ADMIN)).rule).toBe(rule);
    expect(await report()).toEqual(before);
  });

  it('gives a malformed tightening the policy error, not a refusal', async () => {
    const res = await call('mutation { setTenantDegradation(tenantId: "hospital", policy: { quota: { requestsPerMinute: -5 } }) }', H_ADMIN);
    expect(res.errors?.[0]?.extensions?.code).toBe('POLICY_INVALID');
    expect(res.errors?.[0]?.message).toMatch(/requestsPerMinute/);
  });

  it('lowers a limit, and a runaway then trips at the lower one', async () => {
    await ok('mutation { setTenantPolicy(tenantId: "hospital", policy: { run: { toolCallsPerMinute: 3 } }) { tier } }', H_ADMIN);
    await ok('mutation { setTenantDegradation(tenantId: "hospital", policy: { quota: { requestsPerMinute: 40 } }) }', H_ADMIN);
    const r = await report();
    expect(r.policy.run.toolCallsPerMinute).toBe(3);
    expect(r.degradation.quota.requestsPerMinute).toBe(40);
    // what the file says for the same entry stays in force
    expect(r.degradation.consent).toMatchObject({ required: true, fromTier: 1 });
    expect(r.degradation.permittedTiers).toEqual([0, 1]);

    expect((await postSpans(service.otlpUrl, runSteps('hospital', 'runaway', [{ tool: 'a' }, { tool: 'b' }, { tool: 'c' }, { tool: 'd' }]))).status).toBe(200);
    await vi.waitFor(async () => expect(await runDecision('runaway')).toBe('HALT'), { timeout: 5_000 });
  });

  it("cannot reset the run its own limits halted, nor lift the platform's forceOpen", async () => {
    expect((await refusal('mutation { resetBreaker(tenantId: "hospital", runId: "runaway") { state } }', H_ADMIN)).message).toMatch(/OPEN by the policy's rules/);
    expect(await runDecision('runaway')).toBe('HALT');

    await ok('mutation { forceOpenBreaker(tenantId: "hospital", reason: "platform incident 7") { state } }', ADMIN);
    for (const body of ['resetBreaker(tenantId: "hospital") { state }', 'forceOpenBreaker(tenantId: "hospital", reason: "mine now", durationMs: 1) { state }']) {
      expect((await refusal(`mutation { ${body} }`, H_ADMIN)).message).toMatch(/the platform forced this breaker open/);
    }
    const tenantDecision = await ok<{ decision: { action: string; reason: string } }>('{ decision(tenantId: "hospital") { action reason } }', ADMIN);
    expect(tenantDecision.decision).toMatchObject({ action: 'HALT' });
    expect(tenantDecision.decision.reason).toContain('platform incident 7');
    await ok('mutation { resetBreaker(tenantId: "hospital") { state } }', ADMIN);
  });

  it('may open a breaker of its own and close it again', async () => {
    expect(await ok('mutation { forceOpenBreaker(tenantId: "hospital", runId: "suspicious", reason: "looks wrong") { state } }', H_ADMIN)).toEqual({ forceOpenBreaker: { state: 'FORCED_OPEN' } });
    expect(await runDecision('suspicious')).toBe('HALT');
    expect(await ok('mutation { resetBreaker(tenantId: "hospital", runId: "suspicious") { state } }', H_ADMIN)).toEqual({ resetBreaker: { state: 'CLOSED' } });
  });
});

describe('run-time changes merge, say where they come from, and undo to the file', () => {
  it("reports each value's source, actor and time", async () => {
    await ok('mutation { setTenantDegradation(tenantId: "hospital", policy: { quota: { tokensPerMinute: 20000 } }) }', ADMIN);
    const r = await report();
    expect(valueAt(r, 'run.toolCallsPerMinute')).toMatchObject({ value: 3, source: 'TENANT', actor: 'hospital/admin#1' });
    expect(valueAt(r, 'degradation.quota.requestsPerMinute')).toMatchObject({ value: 40, source: 'TENANT', actor: 'hospital/admin#1' });
    expect(valueAt(r, 'degradation.quota.tokensPerMinute')).toMatchObject({ value: 20000, source: 'RUNTIME', actor: 'admin#1' });
    expect(Date.now() - Date.parse(valueAt(r, 'degradation.quota.tokensPerMinute').changedAt!)).toBeLessThan(60_000);
    expect(valueAt(r, 'run.stepCount')).toMatchObject({ value: 50, source: 'FILE', detail: 'tenants.hospital', actor: null, changedAt: null });
    expect(valueAt(r, 'degradation.consent.required')).toMatchObject({ value: true, source: 'FILE', detail: 'tenants.hospital' });
    // the free tier's own number, untouched by the file
    expect(valueAt(r, 'run.durationSeconds')).toMatchObject({ value: 600, source: 'BUILTIN', detail: 'tier free' });
    // the platform's patch merged into the entry: the file's consent and tiers stayed
    expect(r.degradation.consent.required).toBe(true);
    expect(r.degradation.permittedTiers).toEqual([0, 1]);
  });

  it('keeps the tenant layer over a file reload that loosens the file, and over a restart', async () => {
    writeFileSync(policyPath, POLICY(500));
    await vi.waitFor(() => expect(service.core.runtimePolicy.fileDocument().tenants.hospital?.overrides?.run?.toolCallsPerMinute).toBe(500), { timeout: 5_000 });
    expect((await report()).policy.run.toolCallsPerMinute).toBe(3);

    await service.stop();
    await start();
    const r = await report();
    expect(r.policy.run.toolCallsPerMinute).toBe(3);
    expect(r.degradation.quota).toMatchObject({ requestsPerMinute: 40, tokensPerMinute: 20000 });
  });

  it("a tenant admin's revert drops only its own tightenings", async () => {
    await ok('mutation { revertTenantPolicy(tenantId: "hospital") { tier } }', H_ADMIN);
    const r = await report();
    expect(r.policy.run.toolCallsPerMinute).toBe(500);
    expect(r.degradation.quota).toMatchObject({ requestsPerMinute: 100, tokensPerMinute: 20000 });
  });

  it('a platform revert restores exactly what the file says', async () => {
    writeFileSync(policyPath, POLICY(25));
    await vi.waitFor(() => expect(service.core.runtimePolicy.fileDocument().tenants.hospital?.overrides?.run?.toolCallsPerMinute).toBe(25), { timeout: 5_000 });
    await ok('mutation { setTenantPolicy(tenantId: "hospital", policy: { tier: "pro", run: { stepCount: 7 } }) { tier } }', ADMIN);
    expect((await report()).tier).toBe('pro');
    await ok('mutation { revertTenantPolicy(tenantId: "hospital") { tier } }', ADMIN);
    expect(await report()).toEqual(fromFile);
  });
});
