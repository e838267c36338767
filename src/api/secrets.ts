import { readFileSync } from 'node:fs';
import type { AuthSection, SecretRef } from '../policy/policy-types.js';
import type { AuthConfig } from './auth.js';

export class SecretError extends Error {
  override name = 'SecretError';
}

/** Reads a secret; the error names where it was looked for, never the value. */
export function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv, where: string): string {
  if (typeof ref === 'string') return ref;
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value.trim() === '') throw new SecretError(`${where}: environment variable ${ref.env} is not set`);
    return value.trim();
  }
  let text: string;
  try {
    text = readFileSync(ref.file, 'utf8');
  } catch (err) {
    throw new SecretError(`${where}: cannot read ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const value = text.trim();
  if (value.length < 16) throw new SecretError(`${where}: ${ref.file} holds fewer than 16 characters`);
  return value;
}

/** The policy file's `auth:` section with every secret read. */
export function resolveAuthConfig(auth: AuthSection, env: NodeJS.ProcessEnv): AuthConfig {
  const adminTokens = auth.adminTokens.map((ref, i) => resolveSecret(ref, env, `auth.adminTokens[${i}]`));
  const tenantTokens: Record<string, string[]> = {};
  const ingestKeys: Record<string, string[]> = {};
  for (const [tenantId, entry] of Object.entries(auth.tenants)) {
    tenantTokens[tenantId] = entry.apiTokens.map((ref, i) => resolveSecret(ref, env, `auth.tenants.${tenantId}.apiTokens[${i}]`));
    ingestKeys[tenantId] = entry.ingestKeys.map((ref, i) => resolveSecret(ref, env, `auth.tenants.${tenantId}.ingestKeys[${i}]`));
  }
  return { adminTokens, tenantTokens, ingestKeys };
}
