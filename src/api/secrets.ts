import { readFileSync } from 'node:fs';
import type { AuthSection, SecretRef } from '../policy/policy-types.js';
import type { AuthConfig } from './auth.js';

/** Shortest secret accepted, from the policy file, the environment or a secret file alike. */
export const MIN_SECRET_LENGTH = 16;

export class SecretError extends Error {
  override name = 'SecretError';
}

/** Reads a secret; the error names where it was looked for, never the value. */
export function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv, where: string): string {
  if (typeof ref === 'string') return ref;
  if ('env' in ref) {
    const value = env[ref.env];
    // Compose passes an unset variable as empty (`${NAME:-}`), so "empty" is the case to name.
    if (value === undefined) throw new SecretError(`${where}: environment variable ${ref.env} is not set`);
    if (value.trim() === '') throw new SecretError(`${where}: environment variable ${ref.env} is empty: set it (16 characters or more) to start`);
    return longEnough(value.trim(), where, `environment variable ${ref.env}`);
  }
  let text: string;
  try {
    text = readFileSync(ref.file, 'utf8');
  } catch (err) {
    throw new SecretError(`${where}: cannot read ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return longEnough(text.trim(), where, ref.file);
}

// A short secret is guessable whichever way it arrives: the file's literal rule applies to all.
function longEnough(value: string, where: string, source: string): string {
  if (value.length < MIN_SECRET_LENGTH) throw new SecretError(`${where}: ${source} holds fewer than ${MIN_SECRET_LENGTH} characters`);
  return value;
}

/** The policy file's `auth:` section with every secret read. */
export function resolveAuthConfig(auth: AuthSection, env: NodeJS.ProcessEnv): AuthConfig {
  const adminTokens = auth.adminTokens.map((ref, i) => resolveSecret(ref, env, `auth.adminTokens[${i}]`));
  const tenantAdminTokens: Record<string, string[]> = {};
  const agentTokens: Record<string, string[]> = {};
  const ingestKeys: Record<string, string[]> = {};
  const gatewayKeys: Record<string, string[]> = {};
  for (const [tenantId, entry] of Object.entries(auth.tenants)) {
    const resolve = (list: readonly SecretRef[], key: string) => list.map((ref, i) => resolveSecret(ref, env, `auth.tenants.${tenantId}.${key}[${i}]`));
    tenantAdminTokens[tenantId] = resolve(entry.adminTokens, 'adminTokens');
    agentTokens[tenantId] = [...resolve(entry.agentTokens, 'agentTokens'), ...resolve(entry.apiTokens, 'apiTokens')];
    ingestKeys[tenantId] = resolve(entry.ingestKeys, 'ingestKeys');
    gatewayKeys[tenantId] = resolve(entry.gatewayKeys, 'gatewayKeys');
  }
  return { adminTokens, tenantAdminTokens, agentTokens, ingestKeys, gatewayKeys };
}
