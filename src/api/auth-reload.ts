import type { AuthConfig } from './auth.js';

/** How many credentials an auth config holds, by kind and tenant: what a reload may log (never the values). */
export interface AuthCounts {
  adminTokens: number;
  tenantAdminTokens: number;
  agentTokens: number;
  ingestKeys: number;
  tenants: number;
}

export function authCounts(config: AuthConfig): AuthCounts {
  const sum = (lists: Readonly<Record<string, readonly string[]>>) => Object.values(lists).reduce((n, l) => n + l.length, 0);
  return {
    adminTokens: config.adminTokens.length,
    tenantAdminTokens: sum(config.tenantAdminTokens),
    agentTokens: sum(config.agentTokens),
    ingestKeys: sum(config.ingestKeys),
    tenants: new Set([...Object.keys(config.tenantAdminTokens), ...Object.keys(config.agentTokens), ...Object.keys(config.ingestKeys)]).size,
  };
}

/**
 * What `next` would switch off that `previous` had: every admin token, or every API token or
 * ingest key of a tenant. A truncated or half-written file parses as a policy without an auth
 * section, and must not open the API; undefined when nothing is dropped.
 */
export function authDropped(previous: AuthConfig, next: AuthConfig): string | undefined {
  const dropped: string[] = [];
  if (previous.adminTokens.length > 0 && next.adminTokens.length === 0) dropped.push('every admin token');
  const tenantsLosing = (count: (config: AuthConfig, tenantId: string) => number, tenants: Iterable<string>) =>
    [...new Set(tenants)].filter((tenantId) => count(previous, tenantId) > 0 && count(next, tenantId) === 0);
  const apiTokens = (config: AuthConfig, tenantId: string) =>
    (config.tenantAdminTokens[tenantId]?.length ?? 0) + (config.agentTokens[tenantId]?.length ?? 0);
  const api = tenantsLosing(apiTokens, [...Object.keys(previous.tenantAdminTokens), ...Object.keys(previous.agentTokens)]);
  const ingest = tenantsLosing((config, tenantId) => config.ingestKeys[tenantId]?.length ?? 0, Object.keys(previous.ingestKeys));
  if (api.length > 0) dropped.push(`every API token of ${describeTenants(api)}`);
  if (ingest.length > 0) dropped.push(`every ingest key of ${describeTenants(ingest)}`);
  return dropped.length === 0 ? undefined : dropped.join(', ');
}

function describeTenants(tenants: readonly string[]): string {
  const named = tenants.slice(0, 5).map((t) => JSON.stringify(t)).join(', ');
  return tenants.length > 5 ? `${named} and ${tenants.length - 5} more tenants` : `tenant${tenants.length > 1 ? 's' : ''} ${named}`;
}
