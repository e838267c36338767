// Who may call what: one table naming, for every field of the entry points and of Tenant and Run,
// the least role it needs and where its tenant comes from. The resolvers are wrapped from this
// table once, when the schema is built, and a field the table does not name fails that build, so a
// new field is refused until someone decides who may use it.

import { Kind, parse, type ObjectTypeDefinitionNode } from 'graphql';
import { canAccessTenant, type Principal, type Role } from './auth.js';
import { forbiddenRole, forbiddenTenant } from './errors.js';

/** Where a field finds the tenant it touches; absent for fields that filter by the caller (Query.tenants). */
type TenantFrom = 'args.tenantId' | 'args.id' | 'parent.id' | 'parent.tenantId';

export interface AccessRule {
  /** the least role: platformAdmin > tenantAdmin > agent */
  role: Role;
  tenant?: TenantFrom;
}

const RANK: Record<Role, number> = { agent: 0, tenantAdmin: 1, platformAdmin: 2 };

const agent = (tenant?: TenantFrom): AccessRule => ({ role: 'agent', ...(tenant ? { tenant } : {}) });
const tenantAdmin = (tenant: TenantFrom): AccessRule => ({ role: 'tenantAdmin', tenant });
const platformAdmin: AccessRule = { role: 'platformAdmin' };

/** Types whose fields are checked one by one: everything else is reached only through them. */
export const AUTHORIZED_TYPES = ['Query', 'Mutation', 'Subscription', 'Tenant', 'Run'] as const;

export const ACCESS_RULES: Readonly<Record<string, AccessRule>> = {
  'Query.tenants': agent(),
  'Query.tenant': agent('args.id'),
  'Query.run': agent('args.tenantId'),
  'Query.decision': agent('args.tenantId'),
  'Query.verifyAuditLog': tenantAdmin('args.tenantId'),
  'Query.effectivePolicy': tenantAdmin('args.tenantId'),

  // The live view an agent needs to act on its decisions; history, spend and the audit are its admins'.
  'Tenant.id': agent('parent.id'),
  'Tenant.policy': agent('parent.id'),
  'Tenant.metrics': agent('parent.id'),
  'Tenant.breakers': agent('parent.id'),
  'Tenant.decision': agent('parent.id'),
  'Tenant.activeRuns': agent('parent.id'),
  'Tenant.trips': agent('parent.id'),
  'Tenant.timeseries': tenantAdmin('parent.id'),
  'Tenant.costAttribution': tenantAdmin('parent.id'),
  'Tenant.auditEvents': tenantAdmin('parent.id'),
  'Tenant.degradationEvents': tenantAdmin('parent.id'),
  'Tenant.degradation': tenantAdmin('parent.id'),

  'Run.tenantId': agent('parent.tenantId'),
  'Run.runId': agent('parent.tenantId'),
  'Run.metrics': agent('parent.tenantId'),
  'Run.steps': agent('parent.tenantId'),
  'Run.subAgents': agent('parent.tenantId'),
  'Run.decision': agent('parent.tenantId'),
  'Run.decisions': agent('parent.tenantId'),

  // Tenant admins' changes are further held to tighten-only (src/policy/tighten-only.ts).
  'Mutation.setTenantPolicy': tenantAdmin('args.tenantId'),
  'Mutation.setTenantDegradation': tenantAdmin('args.tenantId'),
  'Mutation.revertTenantPolicy': tenantAdmin('args.tenantId'),
  'Mutation.setTierThresholds': platformAdmin,
  'Mutation.forceOpenBreaker': tenantAdmin('args.tenantId'),
  'Mutation.resetBreaker': tenantAdmin('args.tenantId'),
  'Mutation.disableBreaker': platformAdmin,
  'Mutation.acknowledgeEscalation': tenantAdmin('args.tenantId'),
  'Mutation.approveDegradation': tenantAdmin('args.tenantId'),
  'Mutation.refuseDegradation': tenantAdmin('args.tenantId'),
  'Mutation.reserveQuota': agent('args.tenantId'),

  'Subscription.decisions': agent('args.tenantId'),
  'Subscription.breakerEvents': agent('args.tenantId'),
};

/** Throws the FORBIDDEN error the rule gives for this caller, or returns. */
export function authorize(field: string, rule: AccessRule, principal: Principal, parent: unknown, args: Record<string, unknown>): void {
  if (rule.tenant !== undefined) {
    const tenantId = tenantOf(rule.tenant, parent, args);
    // Another tenant is refused with the same words whatever the role, before the role is looked at.
    if (typeof tenantId !== 'string' || !canAccessTenant(principal, tenantId)) throw forbiddenTenant();
  }
  if (RANK[principal.role] < RANK[rule.role]) throw forbiddenRole(field, rule.role);
}

function tenantOf(from: TenantFrom, parent: unknown, args: Record<string, unknown>): unknown {
  const [where, key] = from.split('.') as ['args' | 'parent', string];
  const source = where === 'args' ? args : (parent as Record<string, unknown> | null);
  return source?.[key];
}

type Resolver = (parent: unknown, args: Record<string, unknown>, ctx: { principal: Principal }, info: unknown) => unknown;
type FieldResolver = Resolver | { subscribe: Resolver; resolve?: Resolver };
type ResolverMap = Record<string, unknown>;

/** The fields of AUTHORIZED_TYPES in the schema, as `Type.field`. */
export function authorizedFields(typeDefs: string): string[] {
  const fields: string[] = [];
  for (const definition of parse(typeDefs).definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
    const type = definition as ObjectTypeDefinitionNode;
    if (!(AUTHORIZED_TYPES as readonly string[]).includes(type.name.value)) continue;
    for (const field of type.fields ?? []) fields.push(`${type.name.value}.${field.name.value}`);
  }
  return fields;
}

/**
 * The resolvers with every field of AUTHORIZED_TYPES checked against ACCESS_RULES before it runs.
 * Throws when the schema has a field the table does not name, or the table names one the schema lacks.
 */
export function withAuthority<T extends ResolverMap>(resolvers: T, typeDefs: string, rules = ACCESS_RULES): T {
  const fields = authorizedFields(typeDefs);
  const unruled = fields.filter((f) => !Object.hasOwn(rules, f));
  if (unruled.length > 0) throw new Error(`no access rule for ${unruled.join(', ')} (add it to ACCESS_RULES)`);
  const stale = Object.keys(rules).filter((f) => !fields.includes(f));
  if (stale.length > 0) throw new Error(`access rules for fields the schema does not have: ${stale.join(', ')}`);

  const wrapped: ResolverMap = { ...resolvers };
  for (const field of fields) {
    const [typeName, fieldName] = field.split('.') as [string, string];
    const rule = rules[field]!;
    const type = { ...((wrapped[typeName] as Record<string, FieldResolver> | undefined) ?? {}) };
    const original = type[fieldName];
    const check = (parent: unknown, args: Record<string, unknown>, ctx: { principal: Principal }) => authorize(field, rule, ctx.principal, parent, args);
    if (original !== undefined && typeof original === 'object') {
      type[fieldName] = {
        ...original,
        subscribe: (parent, args, ctx, info) => {
          check(parent, args, ctx);
          return original.subscribe(parent, args, ctx, info);
        },
      };
    } else {
      // A field without a resolver of its own reads the parent's property, as GraphQL's default does.
      const resolve: Resolver = original ?? ((parent) => (parent as Record<string, unknown>)[fieldName]);
      type[fieldName] = (parent, args, ctx, info) => {
        check(parent, args, ctx);
        return resolve(parent, args, ctx, info);
      };
    }
    wrapped[typeName] = type;
  }
  return wrapped as T;
}
