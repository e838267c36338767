// Reads the run thresholds of the tenant's effective policy from Breakwater's GraphQL API, for the
// SDK's local judge: what the server judges runs against, never thresholds of the SDK's own.

import type { Thresholds } from '../policy/policy-types.js';
import { LOCAL_METRICS, type LocalPolicy } from './local-judge.js';

const QUERY = `query BreakwaterRunPolicy($tenantId: String!) { tenant(id: $tenantId) { policy { run { ${LOCAL_METRICS.join(' ')} } warnFraction breaker { cooldownMs } } } }`;

export interface PolicyClientOptions {
  /** the GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql */
  endpoint: string;
  tenantId: string;
  token?: string;
  timeoutMs?: number;
}

/** The tenant's run thresholds as the server holds them; throws when they cannot be read. */
export async function fetchLocalPolicy(options: PolicyClientOptions): Promise<LocalPolicy> {
  const response = await globalThis.fetch(options.endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
    body: JSON.stringify({ query: QUERY, variables: { tenantId: options.tenantId } }),
    signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
  });
  const body = (await response.json().catch(() => ({}))) as {
    data?: { tenant?: null | { policy?: { run?: Record<string, unknown>; warnFraction?: unknown; breaker?: { cooldownMs?: unknown } } } };
    errors?: { message?: string }[];
  };
  if (response.ok && body.data !== undefined && body.data.tenant === null) {
    // The server answers null until the tenant is in its policy or has sent a span.
    throw new Error(`Breakwater does not know tenant ${JSON.stringify(options.tenantId)} yet (no policy entry, no spans): local decisions start at a policy refresh after its first spans`);
  }
  const policy = body.data?.tenant?.policy;
  if (!response.ok || policy === undefined || (body.errors?.length ?? 0) > 0) {
    const detail = body.errors?.map((e) => e.message ?? '').join('; ') ?? '';
    throw new Error(`could not read the tenant's policy: HTTP ${response.status}${detail ? `: ${detail}` : ''}`);
  }
  const run: Thresholds = {};
  for (const metric of LOCAL_METRICS) {
    const value = policy.run?.[metric];
    if (typeof value === 'number' && Number.isFinite(value)) run[metric] = value;
  }
  const warnFraction = policy.warnFraction;
  const cooldownMs = policy.breaker?.cooldownMs;
  if (typeof warnFraction !== 'number' || typeof cooldownMs !== 'number') throw new Error("could not read the tenant's policy: incomplete answer");
  return { run, warnFraction, cooldownMs };
}

/** Tries each GraphQL endpoint in turn (the one in use first) until one answers; throws the last failure. */
export async function fetchLocalPolicyFromAny(endpoints: readonly string[], options: Omit<PolicyClientOptions, 'endpoint'>): Promise<LocalPolicy> {
  let failure: unknown = new Error('no GraphQL endpoint');
  for (const endpoint of endpoints) {
    try {
      return await fetchLocalPolicy({ ...options, endpoint });
    } catch (err) {
      failure = err;
    }
  }
  throw failure;
}
