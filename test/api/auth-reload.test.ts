import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { gql } from '../helpers/graphql.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

// A reload never loosens authentication by accident: a truncated or half-written policy file
// parses as a policy without an auth section, and must not open the API or the receiver.

const ADMIN = 'admin-token-0123456789abcdef';
const TOKEN_A = 'tenant-a-token-0123456789abcdef';
const TOKEN_B = 'tenant-b-token-0123456789abcdef';
const TOKEN_B2 = 'tenant-b-token-2-0123456789abcdef';
const INGEST_A = 'ingest-a-key-0123456789abcdef';

const policy = (tenantB: string) => `
auth:
  adminTokens: ["${ADMIN}"]
  tenants:
    tenant-a: { apiTokens: ["${TOKEN_A}"], ingestKeys: ["${INGEST_A}"] }
${tenantB}
tenants:
  tenant-a: { tier: pro }
`;
const BOTH = policy(`    tenant-b: { apiTokens: ["${TOKEN_B}"] }`);

const dataDir = tempDataDir('bw-auth-reload-');
let service: Service | undefined;

afterEach(async () => {
  await service?.stop();
  service = undefined;
});

const tenantQuery = (tenant: string, token?: string) => gql(service!.graphqlUrl, `{ tenant(id: "${tenant}") { id } }`, {}, token);
/** Writes the policy file and waits out the reload's quiet time and the reload itself. */
async function rewrite(path: string, text: string): Promise<void> {
  writeFileSync(path, text);
  await new Promise((r) => setTimeout(r, 1_100));
}

describe('policy file reloads and authentication', () => {
  it('refuses a reload that drops every token, or all of a tenant’s, and keeps the policy in force', async () => {
    const path = writePolicy(dataDir, BOTH);
    service = await startTestService({ dataDir, policyFile: path, policyFileExplicit: true });
    expect((await tenantQuery('tenant-a')).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    await rewrite(path, ''); // `: > breakwater.yaml`, or an editor's first write
    expect((await tenantQuery('tenant-a')).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await tenantQuery('tenant-a', TOKEN_A)).data).toEqual({ tenant: { id: 'tenant-a' } });
    expect((await postSpans(service.otlpUrl, runSteps('tenant-b', 'r', [{ tool: 'x' }]))).status).toBe(401);
    expect(service.core.policy.forTenant('tenant-a').tier).toBe('pro');

    await rewrite(path, policy('')); // tenant-b's only token gone
    expect((await tenantQuery('tenant-b', TOKEN_B)).data).toEqual({ tenant: { id: 'tenant-b' } });

    // Replacing a tenant's token (not removing the last one) is a change like any other.
    await rewrite(path, policy(`    tenant-b: { apiTokens: ["${TOKEN_B2}"] }`));
    expect((await tenantQuery('tenant-b', TOKEN_B2)).data).toEqual({ tenant: { id: 'tenant-b' } });
    expect((await tenantQuery('tenant-b', TOKEN_B)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('lets an operator remove credentials on purpose with --allow-auth-removal', async () => {
    const path = writePolicy(dataDir, BOTH);
    service = await startTestService({ dataDir, policyFile: path, policyFileExplicit: true, allowAuthRemoval: true });
    await rewrite(path, policy(''));
    expect((await tenantQuery('tenant-b', TOKEN_B)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await tenantQuery('tenant-a', TOKEN_A)).data).toEqual({ tenant: { id: 'tenant-a' } });
  });
});
