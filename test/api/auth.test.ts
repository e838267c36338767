import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter, bearerToken, canAccessTenant, createAuthenticator, TokenTable } from '../../src/api/auth.js';
import { resolveAuthConfig, resolveSecret, SecretError } from '../../src/api/secrets.js';

describe('tokens', () => {
  const auth = createAuthenticator({
    adminTokens: ['admin-0123456789abcdef'],
    tenantAdminTokens: { acme: ['acme-admin-0123456789abcdef'] },
    agentTokens: { acme: ['acme-0123456789abcdef'] },
    ingestKeys: { acme: ['ingest-0123456789abcdef'] },
  });

  it('resolves each role; unknown, empty and huge tokens are nobody', () => {
    expect(auth.principal('admin-0123456789abcdef')).toMatchObject({ role: 'platformAdmin' });
    expect(auth.principal('acme-admin-0123456789abcdef')).toMatchObject({ role: 'tenantAdmin', tenantId: 'acme' });
    expect(auth.principal('acme-0123456789abcdef')).toMatchObject({ role: 'agent', tenantId: 'acme' });
    expect(auth.principal('acme-0123456789abcdeF')).toBeUndefined();
    expect(auth.principal('')).toBeUndefined();
    expect(auth.principal(undefined)).toBeUndefined();
    expect(auth.principal('x'.repeat(10_000))).toBeUndefined();
    expect(auth.tenantForIngestKey('ingest-0123456789abcdef')).toBe('acme');
    expect(auth.tenantForIngestKey('acme-0123456789abcdef')).toBeUndefined();
  });

  it('says null for ingest keys when none are configured (spans name their own tenant)', () => {
    expect(createAuthenticator({ adminTokens: [], tenantAdminTokens: {}, agentTokens: {}, ingestKeys: {} }).tenantForIngestKey('anything')).toBeNull();
  });

  it('keeps digests, not the tokens themselves', () => {
    const table = new TokenTable<string>();
    table.add('secret-0123456789abcdef', 'v');
    expect(JSON.stringify(table)).not.toMatch(/secret/);
    expect(table.lookup('secret-0123456789abcdef')).toBe('v');
  });

  it('parses bearer headers strictly', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer   abc  ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('scopes tenant principals to their tenant', () => {
    expect(canAccessTenant({ role: 'agent', tenantId: 'a', name: 'a/agent#1' }, 'a')).toBe(true);
    expect(canAccessTenant({ role: 'tenantAdmin', tenantId: 'a', name: 'a/admin#1' }, 'b')).toBe(false);
    expect(canAccessTenant({ role: 'platformAdmin', name: 'admin#1' }, 'b')).toBe(true);
  });
});

describe('secrets from the policy file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-secret-'));
  const file = join(dir, 'token');
  writeFileSync(file, 'from-a-file-0123456789\n');

  it('reads literals, environment variables and files', () => {
    const config = resolveAuthConfig(
      {
        adminTokens: ['literal-0123456789abcdef', { env: 'BW_TEST_TOKEN' }],
        tenants: { acme: { adminTokens: [{ env: 'BW_ACME_ADMIN' }], agentTokens: ['agent-literal-0123456789'], apiTokens: [{ file }], ingestKeys: [], gatewayKeys: ['gateway-literal-0123456789'] } },
      },
      { BW_TEST_TOKEN: ' from-env-0123456789 ', BW_ACME_ADMIN: 'acme-admin-from-env-0123' },
    );
    expect(config.adminTokens).toEqual(['literal-0123456789abcdef', 'from-env-0123456789']);
    expect(config.tenantAdminTokens.acme).toEqual(['acme-admin-from-env-0123']);
    // apiTokens is the earlier name of agentTokens: the same, least, role
    expect(config.agentTokens.acme).toEqual(['agent-literal-0123456789', 'from-a-file-0123456789']);
    expect(config.gatewayKeys?.acme).toEqual(['gateway-literal-0123456789']);
  });

  it('names where a secret was looked for, never its value', () => {
    expect(() => resolveSecret({ env: 'NOT_SET_ANYWHERE' }, {}, 'auth.adminTokens[0]')).toThrow(new SecretError('auth.adminTokens[0]: environment variable NOT_SET_ANYWHERE is not set'));
    expect(() => resolveSecret({ file: join(dir, 'missing') }, {}, 'x')).toThrow(/cannot read .*missing \(ENOENT\)/);
    writeFileSync(join(dir, 'short'), 'tiny');
    expect(() => resolveSecret({ file: join(dir, 'short') }, {}, 'x')).toThrow(/fewer than 16 characters/);
    // an environment variable is held to the literal's minimum too (5 characters was accepted)
    expect(() => resolveSecret({ env: 'BW_SHORT' }, { BW_SHORT: 'admin' }, 'auth.adminTokens[0]')).toThrow(
      new SecretError('auth.adminTokens[0]: environment variable BW_SHORT holds fewer than 16 characters'),
    );
    expect(resolveSecret({ env: 'BW_SIXTEEN' }, { BW_SIXTEEN: 'x'.repeat(16) }, 'x')).toBe('x'.repeat(16));
    expect(() => resolveSecret({ env: 'BW_FIFTEEN' }, { BW_FIFTEEN: 'x'.repeat(15) }, 'x')).toThrow(/fewer than 16/);
    try {
      resolveSecret({ file: join(dir, 'short') }, {}, 'x');
    } catch (err) {
      expect((err as Error).message).not.toMatch(/tiny/);
    }
  });
});

describe('AuthFailureLimiter', () => {
  it('blocks an address after too many failures within the window, then forgives', () => {
    const limiter = new AuthFailureLimiter(3, 1000);
    for (let i = 0; i < 3; i++) limiter.fail('1.2.3.4', 100);
    expect(limiter.blocked('1.2.3.4', 'guess', 200)).toBe(true);
    expect(limiter.blocked('5.6.7.8', 'guess', 200)).toBe(false);
    expect(limiter.blocked('1.2.3.4', 'guess', 1200)).toBe(false);
  });
});
