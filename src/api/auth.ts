import { timingSafeEqual } from 'node:crypto';
import { tokenDigest } from './token-digest.js';

/**
 * What a token may do. A platform admin reaches every tenant and every setting; a tenant admin
 * reads its own tenant, answers its consent requests and may only tighten its own limits; an agent
 * token (what the SDK holds) reads its tenant's decisions and runs, reserves quota, and changes nothing.
 */
export const ROLES = ['platformAdmin', 'tenantAdmin', 'agent'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: a platform admin, or a tenant's admin or agent. */
export type Principal =
  | { role: 'platformAdmin'; name: string }
  | { role: 'tenantAdmin' | 'agent'; tenantId: string; name: string };

export interface AuthConfig {
  /** platform admins */
  adminTokens: readonly string[];
  /** tenant id -> its tenant-admin tokens */
  tenantAdminTokens: Readonly<Record<string, readonly string[]>>;
  /** tenant id -> its agent tokens */
  agentTokens: Readonly<Record<string, readonly string[]>>;
  /** tenant id -> its ingest keys for :4318 */
  ingestKeys: Readonly<Record<string, readonly string[]>>;
  /** tenant id -> its model gateway keys for :4001 */
  gatewayKeys?: Readonly<Record<string, readonly string[]>>;
}

export const EMPTY_AUTH: AuthConfig = { adminTokens: [], tenantAdminTokens: {}, agentTokens: {}, ingestKeys: {} };

interface Entry<T> {
  digest: Buffer;
  value: T;
}

/**
 * Token lookup that neither stores nor compares raw secrets: tokens are kept as SHA-256 digests and
 * a presented token's digest is compared to every entry with timingSafeEqual, so the time taken does
 * not depend on how much of a token matched. Linear in the number of tokens, which is small.
 */
export class TokenTable<T> {
  readonly #entries: Entry<T>[] = [];

  add(token: string, value: T): void {
    this.#entries.push({ digest: tokenDigest(token), value });
  }

  get size(): number {
    return this.#entries.length;
  }

  lookup(token: string | undefined): T | undefined {
    if (token === undefined || token.length === 0 || token.length > 4096) return undefined;
    const presented = tokenDigest(token);
    let found: T | undefined;
    for (const entry of this.#entries) {
      // No early exit: every entry is compared whatever matched.
      if (timingSafeEqual(entry.digest, presented) && found === undefined) found = entry.value;
    }
    return found;
  }
}


export interface Authenticator {
  /** API token (Authorization: Bearer) to principal; undefined when unknown */
  principal(token: string | undefined): Principal | undefined;
  /** ingest key to tenant; undefined when unknown, null when no ingest keys are configured */
  tenantForIngestKey(key: string | undefined): string | undefined | null;
  /** any API token configured at all */
  readonly hasApiTokens: boolean;
  /** any ingest key configured at all: then every tenant's spans are bound by a key */
  readonly hasIngestKeys: boolean;
  /** model gateway key to tenant; undefined when unknown */
  tenantForGatewayKey(key: string | undefined): string | undefined;
}

export function createAuthenticator(config: AuthConfig): Authenticator {
  const api = new TokenTable<Principal>();
  config.adminTokens.forEach((token, i) => api.add(token, { role: 'platformAdmin', name: `admin#${i + 1}` }));
  for (const [tenantId, tokens] of Object.entries(config.tenantAdminTokens)) {
    tokens.forEach((token, i) => api.add(token, { role: 'tenantAdmin', tenantId, name: `${tenantId}${TENANT_ACTOR_SEPARATOR}admin#${i + 1}` }));
  }
  for (const [tenantId, tokens] of Object.entries(config.agentTokens)) {
    tokens.forEach((token, i) => api.add(token, { role: 'agent', tenantId, name: `${tenantId}${TENANT_ACTOR_SEPARATOR}agent#${i + 1}` }));
  }
  const ingest = new TokenTable<string>();
  for (const [tenantId, keys] of Object.entries(config.ingestKeys)) for (const key of keys) ingest.add(key, tenantId);
  const gateway = new TokenTable<string>();
  for (const [tenantId, keys] of Object.entries(config.gatewayKeys ?? {})) for (const key of keys) gateway.add(key, tenantId);
  return {
    tenantForGatewayKey: (key) => gateway.lookup(key),
    principal: (token) => api.lookup(token),
    tenantForIngestKey: (key) => (ingest.size === 0 ? null : ingest.lookup(key)),
    hasApiTokens: api.size > 0,
    hasIngestKeys: ingest.size > 0,
  };
}

/** Reads the bearer token from an Authorization header value. */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

// Tenant ids never contain '/', so a name with this prefix can only be one of that tenant's tokens.
const TENANT_ACTOR_SEPARATOR = '/';

/** Whether an actor recorded with an action (a token's name) is one of the tenant's own tokens. */
export function isTenantActor(actor: string | null | undefined, tenantId: string): boolean {
  return typeof actor === 'string' && actor.startsWith(`${tenantId}${TENANT_ACTOR_SEPARATOR}`);
}

export function canAccessTenant(principal: Principal, tenantId: string): boolean {
  return principal.role === 'platformAdmin' || principal.tenantId === tenantId;
}

export { AuthFailureLimiter } from './auth-limiter.js';
