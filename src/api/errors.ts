// Yoga's own error factory: `graphql` ships as ESM and CJS, and an error made by the other copy's
// class would fail yoga's instanceof check and be masked as an internal error.
import { createGraphQLError } from 'graphql-yoga';
import type { PolicyError } from '../policy/policy-error.js';

// Errors the API returns on purpose carry a code in `extensions.code`; anything else is masked by
// yoga as "Unexpected error." with no message or stack.

export function unauthenticated(): ReturnType<typeof createGraphQLError> {
  return createGraphQLError('missing or invalid token', { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

/** Past the failed-authentication limit, the address is told to wait rather than to fix its token. */
export function tooManyFailures(): ReturnType<typeof createGraphQLError> {
  return createGraphQLError('too many failed authentications; retry later', {
    extensions: { code: 'RATE_LIMITED', http: { status: 429, headers: { 'Retry-After': '60' } } },
  });
}

/** The same words whether the tenant exists or not: a tenant token learns nothing about others. */
export function forbiddenTenant(): ReturnType<typeof createGraphQLError> {
  return createGraphQLError('this token cannot reach that tenant', { extensions: { code: 'FORBIDDEN' } });
}

const ROLE_NAMES = { platformAdmin: 'a platform admin token', tenantAdmin: "a tenant admin token (or a platform admin's)", agent: 'a token' } as const;

/** The caller's role is below what the field needs; `rule` names the field, so a refusal says what refused it. */
export function forbiddenRole(field: string, needed: keyof typeof ROLE_NAMES): ReturnType<typeof createGraphQLError> {
  return createGraphQLError(`${field} needs ${ROLE_NAMES[needed]}`, { extensions: { code: 'FORBIDDEN', rule: `${field} requires ${needed}` } });
}

/** A tenant admin's change that would loosen what the platform set, with the rule that refused it. */
export function forbiddenLoosening(message: string, rule: string): ReturnType<typeof createGraphQLError> {
  return createGraphQLError(message, { extensions: { code: 'FORBIDDEN', rule } });
}

export function badInput(message: string): ReturnType<typeof createGraphQLError> {
  return createGraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

export function policyRejected(error: PolicyError): ReturnType<typeof createGraphQLError> {
  return createGraphQLError(`policy change refused: ${error.message}`, {
    extensions: { code: 'POLICY_INVALID', issues: error.issues.map((i) => ({ path: i.path, message: i.message })) },
  });
}

/** A tenant changed its policy too often: each change is kept and replayed at every reload. */
export function rateLimited(what: string, retryAfterSeconds: number): ReturnType<typeof createGraphQLError> {
  return createGraphQLError(`${what}: too many changes; try again in ${retryAfterSeconds} s`, {
    extensions: { code: 'RATE_LIMITED', retryAfterSeconds },
  });
}

/** One connection or one token holds as many live subscriptions as it may; the others are untouched. */
export function tooManySubscriptions(holder: 'connection' | 'token', held: number): ReturnType<typeof createGraphQLError> {
  return createGraphQLError(`this ${holder} already holds ${held} subscriptions; end one before starting another`, {
    extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', limit: held },
  });
}

/** A subscription whose token was removed from the policy, or now names another role or tenant. */
export function tokenRevoked(): ReturnType<typeof createGraphQLError> {
  return createGraphQLError('the token of this subscription was revoked or changed; subscribe again with a valid token', {
    extensions: { code: 'TOKEN_REVOKED' },
  });
}

/** The action would hold more of something than its tenant may (run breakers): nothing was changed. */
export function limitReached(message: string): ReturnType<typeof createGraphQLError> {
  return createGraphQLError(message, { extensions: { code: 'LIMIT_EXCEEDED' } });
}
