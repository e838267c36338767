import { GraphQLError } from 'graphql';
import type { PolicyError } from '../policy/policy-error.js';

// Errors the API returns on purpose carry a code in `extensions.code`; anything else is masked by
// yoga as "Unexpected error." with no message or stack.

export function unauthenticated(): GraphQLError {
  return new GraphQLError('missing or invalid token', { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

/** The same words whether the tenant exists or not: a tenant token learns nothing about others. */
export function forbiddenTenant(): GraphQLError {
  return new GraphQLError('this token cannot reach that tenant', { extensions: { code: 'FORBIDDEN' } });
}

export function adminOnly(): GraphQLError {
  return new GraphQLError('this operation needs an admin token', { extensions: { code: 'FORBIDDEN' } });
}

export function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

export function policyRejected(error: PolicyError): GraphQLError {
  return new GraphQLError(`policy change refused: ${error.message}`, {
    extensions: { code: 'POLICY_INVALID', issues: error.issues.map((i) => ({ path: i.path, message: i.message })) },
  });
}
