import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicyFile, parsePolicy } from '../../src/policy/load-policy.js';
import { PolicyError } from '../../src/policy/policy-error.js';
import { PolicyStore } from '../../src/policy/policy-store.js';
import { waitUntil } from '../sdk/test-support.js';

// A policy file that does not parse is reported in the log with its line and key path; the
// tokens of its auth section must never be in that report.

const ADMIN = 'adm-SECRET-token-0123456789abcdef';
const TENANT = 'ten-SECRET-token-0123456789abcdef';
// longer than the 40 characters describe-issue.ts quotes back
const LONG = 'long-SECRET-token-0123456789abcdef-0123456789abcdef';

const BROKEN: Record<string, string> = {
  'a token where a nested key may not be': `auth:\n  adminTokens: ["${ADMIN}"]\n  tenants:\n    acme: ${TENANT}: x\n`,
  'a token where a list is expected': `auth:\n  adminTokens: ${ADMIN}\n  tenants:\n    acme: { apiTokens: ${LONG} }\n`,
  'an unclosed quote after the tokens': `auth:\n  adminTokens:\n    - ${ADMIN}\n    - "${TENANT}\n  tenants: {}\n`,
  'a bad indent inside the section': `auth:\n  adminTokens:\n    - ${ADMIN}\n   bad: indent\n  tenants:\n    acme: { ingestKeys: [${TENANT}] }\n`,
  'a token under an unknown key': `auth:\n  tenants:\n    acme:\n      apiTokens: [${TENANT}]\n      ${ADMIN}: x\n`,
};

function refusal(text: string): PolicyError {
  try {
    parsePolicy(text, 'breakwater.yaml');
  } catch (error) {
    if (error instanceof PolicyError) return error;
    throw error;
  }
  throw new Error('the policy was accepted');
}

function expectNoSecret(text: string): void {
  for (const secret of [ADMIN, TENANT, LONG]) {
    for (let start = 0; start + 16 <= secret.length; start += 8) expect(text).not.toContain(secret.slice(start, start + 16));
  }
}

describe('policy errors and the auth section', () => {
  for (const [name, text] of Object.entries(BROKEN)) {
    it(`names the place but not the token: ${name}`, () => {
      const error = refusal(text);
      expect(error.issues.length).toBeGreaterThan(0);
      expectNoSecret(error.message);
      expectNoSecret(JSON.stringify(error.issues));
      // the operator still learns where
      expect(error.issues[0]?.line).toBeGreaterThan(1);
      expect(error.issues[0]?.path).toMatch(/^auth/);
    });
  }

  it('keeps tenant ids in the key path', () => {
    const error = refusal(`auth:\n  tenants:\n    acme-production:\n      apiTokens: ${TENANT}\n`);
    expect(error.issues[0]?.path).toBe('auth.tenants.acme-production.apiTokens');
    expectNoSecret(error.message);
  });

  it('reports a broken reload without the tokens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bw-redact-'));
    const store = new PolicyStore();
    try {
      const path = join(dir, 'breakwater.yaml');
      await writeFile(path, `auth:\n  adminTokens: ["${ADMIN}"]\n`);
      store.replace(await loadPolicyFile(path), path);
      const errors: Error[] = [];
      store.watchFile(path, { onError: (error) => errors.push(error), debounceMs: 20 });
      await writeFile(path, BROKEN['a token where a nested key may not be']!);
      await waitUntil(() => errors.length > 0, 5_000, 'the reload error');
      expect(errors[0]).toBeInstanceOf(PolicyError);
      expectNoSecret(errors[0]!.message);
    } finally {
      store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
