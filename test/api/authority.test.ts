import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizedFields } from '../../src/api/authority.js';
import { SCHEMA_FILE } from '../../src/api/graphql-server.js';
import type { Service } from '../../src/app/service.js';
import { gql, subscribeSse, type GraphqlResponse } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

// The authorization matrix: every field of every entry point, and of Tenant and Run, called by each
// role of tenant-a and by tenant-b's tokens, over real HTTP. The expected least role of each field is
// written here from the roles' contract (docs/api.md), not read from the server's table, and a field
// the schema gains without a row here fails the first test.

const ADMIN = 'platform-admin-0123456789abcdef';
const A_ADMIN = 'a-tenant-admin-0123456789abcdef';
const A_AGENT = 'a-agent-token-0123456789abcdef';
const B_ADMIN = 'b-tenant-admin-0123456789abcdef';
const B_AGENT = 'b-agent-token-0123456789abcdef';

const POLICY = `
auth:
  adminTokens: ["${ADMIN}"]
  tenants:
    tenant-a: { adminTokens: ["${A_ADMIN}"], agentTokens: ["${A_AGENT}"] }
    tenant-b: { adminTokens: ["${B_ADMIN}"], apiTokens: ["${B_AGENT}"] }
tenants:
  tenant-a: { tier: free, overrides: { run: { stepCount: 100 } } }
  tenant-b: { tier: pro }
degradation:
  tenants:
    tenant-a: { quota: { requestsPerMinute: 60 } }
`;

type Role = 'agent' | 'tenantAdmin' | 'platformAdmin';
const RANK: Record<Role, number> = { agent: 0, tenantAdmin: 1, platformAdmin: 2 };

interface Caller {
  tag: string;
  token: string;
  role: Role;
  /** absent: the platform */
  tenant?: 'tenant-a' | 'tenant-b';
}

// tenant-a's callers first, so a tenant admin tightens before the platform changes its bounds
const CALLERS: Caller[] = [
  { tag: 'a-agent', token: A_AGENT, role: 'agent', tenant: 'tenant-a' },
  { tag: 'a-admin', token: A_ADMIN, role: 'tenantAdmin', tenant: 'tenant-a' },
  { tag: 'b-agent', token: B_AGENT, role: 'agent', tenant: 'tenant-b' },
  { tag: 'b-admin', token: B_ADMIN, role: 'tenantAdmin', tenant: 'tenant-b' },
  { tag: 'platform', token: ADMIN, role: 'platformAdmin' },
];

interface Case {
  least: Role;
  /** the operation, aimed at tenant-a; `tag` keeps each caller's breaker operations on runs of its own */
  op: (tag: string) => string;
  /** only a platform admin: every tenant's token is refused by its role, before any tenant is looked at */
  platformOnly?: boolean;
}

const from = new Date(Date.now() - 3_600_000).toISOString();
const to = new Date(Date.now() + 3_600_000).toISOString();
const onTenant = (selection: string) => () => `{ tenant(id: "tenant-a") { ${selection} } }`;
const onRun = (selection: string) => () => `{ run(tenantId: "tenant-a", runId: "run-a") { ${selection} } }`;
const mutation = (body: string) => () => `mutation { ${body} }`;

const CASES: Record<string, Case> = {
  'Query.tenants': { least: 'agent', op: () => '{ tenants { edges { node { id } } } }' },
  'Query.tenant': { least: 'agent', op: onTenant('id') },
  'Query.run': { least: 'agent', op: onRun('runId') },
  'Query.decision': { least: 'agent', op: () => '{ decision(tenantId: "tenant-a") { action } }' },
  'Query.verifyAuditLog': { least: 'tenantAdmin', op: () => '{ verifyAuditLog(tenantId: "tenant-a") { ok } }' },
  'Query.effectivePolicy': { least: 'tenantAdmin', op: () => '{ effectivePolicy(tenantId: "tenant-a") { tier } }' },

  'Tenant.id': { least: 'agent', op: onTenant('id') },
  'Tenant.policy': { least: 'agent', op: onTenant('policy { tier }') },
  'Tenant.metrics': { least: 'agent', op: onTenant('metrics { stepCount }') },
  'Tenant.breakers': { least: 'agent', op: onTenant('breakers { state }') },
  'Tenant.decision': { least: 'agent', op: onTenant('decision { action }') },
  'Tenant.activeRuns': { least: 'agent', op: onTenant('activeRuns { runId }') },
  'Tenant.trips': { least: 'agent', op: onTenant('trips') },
  'Tenant.timeseries': { least: 'tenantAdmin', op: onTenant(`timeseries(metric: SPANS, from: "${from}", to: "${to}") { value }`) },
  'Tenant.costAttribution': { least: 'tenantAdmin', op: onTenant(`costAttribution(from: "${from}", to: "${to}") { model }`) },
  'Tenant.auditEvents': { least: 'tenantAdmin', op: onTenant('auditEvents { reason }') },
  'Tenant.degradationEvents': { least: 'tenantAdmin', op: onTenant('degradationEvents { reason }') },
  'Tenant.degradation': { least: 'tenantAdmin', op: onTenant('degradation { status }') },

  'Run.tenantId': { least: 'agent', op: onRun('tenantId') },
  'Run.runId': { least: 'agent', op: onRun('runId') },
  'Run.metrics': { least: 'agent', op: onRun('metrics { stepCount }') },
  'Run.steps': { least: 'agent', op: onRun('steps { toolName }') },
  'Run.subAgents': { least: 'agent', op: onRun('subAgents { depth }') },
  'Run.decision': { least: 'agent', op: onRun('decision { action }') },
  'Run.decisions': { least: 'agent', op: onRun('decisions { reason }') },

  'Mutation.setTenantPolicy': { least: 'tenantAdmin', op: mutation('setTenantPolicy(tenantId: "tenant-a", policy: { run: { stepCount: 40 } }) { tier }') },
  'Mutation.setTenantDegradation': { least: 'tenantAdmin', op: mutation('setTenantDegradation(tenantId: "tenant-a", policy: { quota: { requestsPerMinute: 30 } })') },
  'Mutation.revertTenantPolicy': { least: 'tenantAdmin', op: mutation('revertTenantPolicy(tenantId: "tenant-a") { tier }') },
  'Mutation.setTierThresholds': { least: 'platformAdmin', platformOnly: true, op: mutation('setTierThresholds(tier: "enterprise", thresholds: { warnFraction: 0.7 })') },
  'Mutation.forceOpenBreaker': { least: 'tenantAdmin', op: (tag) => `mutation { forceOpenBreaker(tenantId: "tenant-a", runId: "open-${tag}", reason: "matrix") { state } }` },
  'Mutation.resetBreaker': { least: 'tenantAdmin', op: (tag) => `mutation { resetBreaker(tenantId: "tenant-a", runId: "reset-${tag}") { state } }` },
  'Mutation.disableBreaker': { least: 'platformAdmin', platformOnly: true, op: (tag) => `mutation { disableBreaker(tenantId: "tenant-a", runId: "off-${tag}", reason: "matrix") { state } }` },
  'Mutation.acknowledgeEscalation': { least: 'tenantAdmin', op: mutation('acknowledgeEscalation(tenantId: "tenant-a", note: "seen") { kind }') },
  // an unknown request: a caller allowed to answer is told NOT_FOUND, one that is not, FORBIDDEN
  'Mutation.approveDegradation': { least: 'tenantAdmin', op: mutation('approveDegradation(tenantId: "tenant-a", requestId: "no-such-request") { decision { action } }') },
  'Mutation.refuseDegradation': { least: 'tenantAdmin', op: mutation('refuseDegradation(tenantId: "tenant-a", requestId: "no-such-request") { decision { action } }') },
  'Mutation.reserveQuota': { least: 'agent', op: mutation('reserveQuota(tenantId: "tenant-a", tokens: 1) { granted }') },

  'Subscription.decisions': { least: 'agent', op: () => 'subscription { decisions(tenantId: "tenant-a") { action } }' },
  'Subscription.breakerEvents': { least: 'agent', op: () => 'subscription { breakerEvents(tenantId: "tenant-a") { reason } }' },
};

let service: Service;
let url: string;

beforeAll(async () => {
  service = await startWithPolicy(POLICY);
  url = service.graphqlUrl;
  expect((await postSpans(service.otlpUrl, runSteps('tenant-a', 'run-a', [{ tool: 'search' }, {}]))).status).toBe(200);
});

afterAll(async () => {
  await service?.stop();
});

type Outcome = { allowed: true } | { allowed: false; message: string; rule: unknown };

/** What the server answered: allowed, or the FORBIDDEN error it refused with. */
function outcomeOf(errors: GraphqlResponse['errors']): Outcome {
  const refusal = (errors ?? []).find((e) => e.extensions?.code === 'FORBIDDEN' || e.extensions?.code === 'UNAUTHENTICATED');
  return refusal === undefined ? { allowed: true } : { allowed: false, message: refusal.message, rule: refusal.extensions?.rule };
}

async function call(field: string, testCase: Case, caller: Caller): Promise<{ outcome: Outcome; data: unknown; errors: GraphqlResponse['errors'] }> {
  const operation = testCase.op(caller.tag);
  if (!field.startsWith('Subscription.')) {
    const res = await gql(url, operation, {}, caller.token);
    return { outcome: outcomeOf(res.errors), data: res.data, errors: res.errors };
  }
  const subscription = subscribeSse<{ data?: unknown; errors?: GraphqlResponse['errors'] }>(url, operation, {}, caller.token);
  try {
    // breakerEvents says nothing until something happens: the platform makes something happen
    if (field === 'Subscription.breakerEvents') {
      await new Promise((resolve) => setTimeout(resolve, 200));
      await gql(url, `mutation { forceOpenBreaker(tenantId: "tenant-a", runId: "event-${caller.tag}", reason: "matrix") { state } }`, {}, ADMIN);
    }
    const deadline = Date.now() + 5_000;
    while (subscription.messages.length === 0 && subscription.errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const errors = subscription.errors.flatMap((e) => (Array.isArray(e) ? e : [e])) as GraphqlResponse['errors'];
    if (subscription.messages.length > 0) return { outcome: { allowed: true }, data: subscription.messages[0], errors };
    if (errors!.length > 0) return { outcome: outcomeOf(errors), data: undefined, errors };
    throw new Error(`${field} for ${caller.tag}: neither a message nor an error in 5 s`);
  } finally {
    subscription.close();
  }
}

describe('authorization matrix', () => {
  it('has a row for every field the schema lets a caller reach', () => {
    const fields = authorizedFields(readFileSync(SCHEMA_FILE, 'utf8'));
    expect(Object.keys(CASES).sort()).toEqual([...fields].sort());
  });

  for (const [field, testCase] of Object.entries(CASES)) {
    describe(field, () => {
      for (const caller of CALLERS) {
        const otherTenant = caller.tenant === 'tenant-b';
        const expected = otherTenant ? (field === 'Query.tenants' ? 'filtered' : 'refused') : RANK[caller.role] >= RANK[testCase.least] ? 'allowed' : 'refused';
        it(`${caller.tag}: ${expected}`, async () => {
          const { outcome, data, errors } = await call(field, testCase, caller);
          if (expected === 'filtered') {
            expect(outcome).toEqual({ allowed: true });
            // the list names only the caller's own tenant
            expect(JSON.stringify(data)).not.toContain('tenant-a');
            return;
          }
          if (expected === 'allowed') {
            expect(outcome, JSON.stringify(errors)).toEqual({ allowed: true });
            return;
          }
          expect(outcome.allowed).toBe(false);
          if (outcome.allowed) return;
          if (otherTenant && !testCase.platformOnly) {
            // the same words whatever the role and whatever the field: nothing says what tenant-a has
            expect(outcome.message).toBe('this token cannot reach that tenant');
          } else {
            expect(outcome.rule).toMatch(new RegExp(`requires ${testCase.least}$`));
          }
        });
      }
    });
  }

  it("lists only the caller's own tenant to a tenant's tokens and every tenant to the platform", async () => {
    const ids = async (token: string) =>
      ((await gql<{ tenants: { edges: { node: { id: string } }[] } }>(url, '{ tenants(sort: ID) { edges { node { id } } } }', {}, token)).data!.tenants.edges.map((e) => e.node.id));
    await postSpans(service.otlpUrl, runSteps('tenant-b', 'run-b', [{}]));
    expect(await ids(A_AGENT)).toEqual(['tenant-a']);
    expect(await ids(B_ADMIN)).toEqual(['tenant-b']);
    expect(await ids(ADMIN)).toEqual(expect.arrayContaining(['tenant-a', 'tenant-b']));
  });

  it('refuses a request without a token, and one with an unknown token, before any field', async () => {
    for (const token of [undefined, 'not-a-token-0123456789abcdef']) {
      const res = await gql(url, '{ tenant(id: "tenant-a") { id } }', {}, token);
      expect(res.data?.tenant ?? null).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
  });
});
