import type { AuditEvent, AuditKind } from '../audit/audit-event.js';
import { breakerEventView } from '../decisions/breaker-event-view.js';
import { AUDIT_KINDS } from '../audit/audit-event.js';
import type { Decision } from '../contracts/decision.js';
import { ConsentError, type ConsentResult } from '../degradation/degradation-engine.js';
import type { DegradationPatch } from '../degradation/degradation-schema.js';
import type { PolicyChange } from '../policy/effective-policy.js';
import { tenantDegradationPolicy } from '../degradation/degradation-schema.js';
import { policyProvenance } from '../policy/policy-provenance.js';
import type { Tightening } from '../policy/tighten-only.js';
import type { BreakerSettings, EffectivePolicy, TenantOverrides } from '../policy/policy-types.js';
import { BreakerLimitError } from '../breakers/breaker-engine.js';
import { tenantOperationRefusal } from '../breakers/tenant-operations.js';
import type { Core } from '../app/service.js';
import { RUN_METRICS, type RunMetric } from '../windows/metric-names.js';
import { canAccessTenant, type Principal } from './auth.js';
import { badInput, forbiddenLoosening, limitReached, policyRejected, rateLimited } from './errors.js';
import { costAttribution, HistoryRangeError, runExists, runSteps, tenantHasSpans, tenantTimeseries, type TimeseriesMetric } from './history.js';
import { eventRange, seriesRange, type RangeArgs } from './time-range.js';
import { DateTimeScalar, JsonInputScalar, JsonScalar } from './scalars.js';
import type { SubscriptionOwner, SubscriptionRegistry } from './subscription-registry.js';

export interface ApiContext {
  principal: Principal;
  core: Core;
  /** where this request's subscriptions are counted and revoked */
  subscriptions: { registry: SubscriptionRegistry; owner: SubscriptionOwner };
}

/** Lists never return more than this many items: larger pages are an error, not a truncation. */
export const MAX_PAGE = 500;

const ZERO_METRICS = Object.fromEntries(RUN_METRICS.map((m) => [m, 0])) as Record<RunMetric, number>;

function pageSize(first: number | null | undefined, fallback: number): number {
  const n = first ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw badInput(`first must be between 1 and ${MAX_PAGE}`);
  return n;
}

/** History calls turn range problems into input errors. */
async function history<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof HistoryRangeError) throw badInput(err.message);
    throw err;
  }
}

interface TenantParent {
  id: string;
}

function knownTenants(core: Core): Set<string> {
  const ids = new Set<string>(core.windows.tenants());
  for (const id of Object.keys(core.policy.current().tenants)) ids.add(id);
  return ids;
}

/**
 * Whether Breakwater knows anything of a tenant: in the policy (its tenants or auth sections), in
 * the live windows, or with stored spans or audit events. An unknown id answers null, so a typo
 * does not look like a healthy tenant.
 */
async function tenantIsKnown(core: Core, id: string): Promise<boolean> {
  if (knownTenants(core).has(id) || Object.hasOwn(core.policy.current().auth.tenants, id)) return true;
  if (await tenantHasSpans(core.store.client, id)) return true;
  return (await core.audit.list(id, { limit: 1 })).length > 0;
}

type TenantSort = 'TOKEN_VELOCITY' | 'COST_RATE' | 'TRIPS' | 'ERROR_RATIO' | 'ID';

function sortKey(core: Core, tenantId: string, sort: TenantSort): number {
  const metrics = core.windows.tenantMetrics(tenantId) ?? ZERO_METRICS;
  switch (sort) {
    case 'TOKEN_VELOCITY':
      return metrics.tokenVelocity60s;
    case 'COST_RATE':
      return metrics.costPerMinuteUsd;
    case 'ERROR_RATIO':
      return metrics.errorRatio;
    case 'TRIPS':
      return core.engine.recentTrips(tenantId, 60);
    case 'ID':
      return 0;
  }
}

function encodeCursor(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string | null | undefined): number {
  if (cursor === null || cursor === undefined) return 0;
  const match = /^offset:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw badInput('after is not a cursor this API issued');
  return Number(match[1]) + 1;
}

function policyView(policy: EffectivePolicy, core: Core) {
  return {
    tier: policy.tier,
    run: policy.run,
    tenant: policy.tenant,
    breaker: policy.breaker,
    warnFraction: policy.warnFraction,
    overrides: core.policy.current().tenants[policy.tenantId]?.overrides ?? {},
  };
}

function auditView(event: AuditEvent) {
  return { ...event, time: event.eventTime, details: event.details };
}

function decisionView(decision: Decision) {
  return { ...decision, degraded: decision.degraded ?? false };
}

function auditKinds(kinds: readonly string[] | null | undefined): AuditKind[] | undefined {
  if (kinds === null || kinds === undefined) return undefined;
  for (const kind of kinds) if (!(AUDIT_KINDS as readonly string[]).includes(kind)) throw badInput(`unknown audit kind ${JSON.stringify(kind)}; one of ${AUDIT_KINDS.join(', ')}`);
  return kinds as AuditKind[];
}

function thresholdsInput(input: Record<string, number | null> | null | undefined): Record<string, number | null> | undefined {
  if (input === null || input === undefined) return undefined;
  // GraphQL passes only the fields given; a null clears a threshold, as in the policy file.
  return { ...input };
}

function breakerInput(input: Partial<BreakerSettings> | null | undefined): Partial<BreakerSettings> | undefined {
  if (input === null || input === undefined) return undefined;
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== null && v !== undefined)) as Partial<BreakerSettings>;
}

interface PolicyInput {
  tier?: string | null;
  run?: Record<string, number | null> | null;
  tenant?: Record<string, number | null> | null;
  breaker?: Partial<BreakerSettings> | null;
  warnFraction?: number | null;
}

async function applyChange(ctx: ApiContext, change: PolicyChange) {
  const outcome = await ctx.core.runtimePolicy.change(change, ctx.principal.name);
  if (outcome.ok) return;
  if ('refusal' in outcome) throw forbiddenLoosening(outcome.refusal.message, outcome.refusal.rule);
  if ('retryAfterSeconds' in outcome) {
    ctx.core.refusals.refused('tenantId' in change ? change.tenantId : null, 'policy_change_rate', { changes: 1 }, { actor: ctx.principal.name, retryAfterSeconds: outcome.retryAfterSeconds });
    throw rateLimited('policy change refused', outcome.retryAfterSeconds);
  }
  throw policyRejected(outcome.error);
}

/** Tenant admins' changes become their own tightening layer; the platform's are patches over the file. */
function isTenantAdmin(ctx: ApiContext): boolean {
  return ctx.principal.role === 'tenantAdmin';
}

/** A tenant admin's breaker operation is held to tenant-operations.ts. */
function checkTenantOperation(ctx: ApiContext, tenantId: string, runId: string | undefined, operation: string): void {
  if (!isTenantAdmin(ctx)) return;
  const refusal = tenantOperationRefusal(ctx.core.engine.breaker(tenantId, runId), tenantId);
  if (refusal !== undefined) throw forbiddenLoosening(`${operation} refused: ${refusal}`, 'tenant admins may not lift what the platform or the policy opened');
}

/** An operator action refused for its tenant's run-breaker bound is the caller's to see, not an internal error. */
async function withinLimit<T>(action: Promise<T>): Promise<T> {
  try {
    return await action;
  } catch (err) {
    if (err instanceof BreakerLimitError) throw limitReached(err.message);
    throw err;
  }
}

function reasonText(reason: string): string {
  const trimmed = reason.trim();
  if (trimmed === '' || trimmed.length > 1000) throw badInput('reason must be 1 to 1000 characters');
  return trimmed;
}

export const resolvers = {
  DateTime: DateTimeScalar,
  JSON: JsonScalar,
  JSONInput: JsonInputScalar,

  Query: {
    tenants(
      _: unknown,
      args: { filter?: { idPrefix?: string | null; tier?: string | null; tripping?: boolean | null } | null; sort: TenantSort; first: number; after?: string | null },
      ctx: ApiContext,
    ) {
      const first = pageSize(args.first, 50);
      const offset = decodeCursor(args.after);
      const { core } = ctx;
      let ids = [...knownTenants(core)].filter((id) => canAccessTenant(ctx.principal, id));
      const filter = args.filter ?? {};
      if (filter.idPrefix) ids = ids.filter((id) => id.startsWith(filter.idPrefix!));
      if (filter.tier) ids = ids.filter((id) => core.policy.forTenant(id).tier === filter.tier);
      if (filter.tripping !== null && filter.tripping !== undefined) {
        ids = ids.filter((id) => (core.bus.mostSevereInTenant(id).action !== 'ALLOW') === filter.tripping);
      }
      const keyed = ids.map((id) => ({ id, key: sortKey(core, id, args.sort) }));
      keyed.sort((a, b) => b.key - a.key || a.id.localeCompare(b.id));
      const page = keyed.slice(offset, offset + first);
      return {
        edges: page.map((t, i) => ({ cursor: encodeCursor(offset + i), node: { id: t.id } })),
        pageInfo: { hasNextPage: offset + first < keyed.length, endCursor: page.length > 0 ? encodeCursor(offset + page.length - 1) : null },
        totalCount: keyed.length,
      };
    },

    async tenant(_: unknown, { id }: { id: string }, ctx: ApiContext): Promise<TenantParent | null> {
      return (await tenantIsKnown(ctx.core, id)) ? { id } : null;
    },

    async run(_: unknown, { tenantId, runId }: { tenantId: string; runId: string }, ctx: ApiContext) {
      const live = ctx.core.windows.runDetails(tenantId, runId);
      if (!live && !(await runExists(ctx.core.store.client, tenantId, runId))) return null;
      return { tenantId, runId };
    },

    decision(_: unknown, { tenantId, runId }: { tenantId: string; runId?: string | null }, ctx: ApiContext) {
      return decisionView(ctx.core.bus.latest(tenantId, runId ?? undefined));
    },

    effectivePolicy(_: unknown, { tenantId }: { tenantId: string }, ctx: ApiContext) {
      const { runtimePolicy, policy } = ctx.core;
      const effective = policy.forTenant(tenantId);
      return {
        tenantId,
        tier: effective.tier,
        policy: policyView(effective, ctx.core),
        degradation: tenantDegradationPolicy(policy.current().degradation, tenantId),
        values: policyProvenance(runtimePolicy.fileDocument(), runtimePolicy.changes(), tenantId).map((v) => ({
          ...v,
          changedAt: v.changedAt === null ? null : new Date(v.changedAt),
        })),
      };
    },

    async verifyAuditLog(_: unknown, { tenantId }: { tenantId: string }, ctx: ApiContext) {
      return ctx.core.audit.verify(tenantId);
    },
  },

  Tenant: {
    policy: (t: TenantParent, _: unknown, ctx: ApiContext) => policyView(ctx.core.policy.forTenant(t.id), ctx.core),
    metrics: (t: TenantParent, _: unknown, ctx: ApiContext) => ctx.core.windows.tenantMetrics(t.id) ?? ZERO_METRICS,
    breakers: (t: TenantParent, _: unknown, ctx: ApiContext) => ctx.core.engine.breakers(t.id).map((b) => ({ ...b, decision: decisionView(b.decision) })),
    decision: (t: TenantParent, _: unknown, ctx: ApiContext) => decisionView(ctx.core.bus.mostSevereInTenant(t.id)),
    activeRuns(t: TenantParent, { first }: { first: number }, ctx: ApiContext) {
      const n = pageSize(first, 50);
      return ctx.core.windows
        .activeRuns(t.id)
        .slice(0, n)
        .map((runId) => ({ tenantId: t.id, runId }))
        .filter(({ runId }) => ctx.core.windows.runDetails(t.id, runId) !== undefined)
        .map(({ runId }) => {
          const details = ctx.core.windows.runDetails(t.id, runId)!;
          return {
            runId,
            firstSeen: details.startedAtMs,
            lastSeen: details.endedAtMs,
            metrics: ctx.core.windows.runMetrics(t.id, runId) ?? ZERO_METRICS,
            decision: decisionView(ctx.core.bus.latest(t.id, runId)),
          };
        });
    },
    trips(t: TenantParent, { minutes }: { minutes: number }, ctx: ApiContext) {
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > 60) throw badInput('minutes must be between 1 and 60 (trips are kept in memory for an hour; older ones are in auditEvents)');
      return ctx.core.engine.recentTrips(t.id, minutes);
    },
    timeseries(t: TenantParent, args: RangeArgs & { metric: TimeseriesMetric; stepSeconds: number }, ctx: ApiContext) {
      return history(() => {
        const { from, to } = seriesRange(args, Date.now());
        return tenantTimeseries(ctx.core.store.client, t.id, args.metric, from, to, args.stepSeconds);
      });
    },
    costAttribution(t: TenantParent, args: RangeArgs, ctx: ApiContext) {
      return history(() => {
        const { from, to } = seriesRange(args, Date.now());
        return costAttribution(ctx.core.store.client, t.id, from, to);
      });
    },
    async auditEvents(t: TenantParent, args: RangeArgs & { kinds?: string[] | null; first: number }, ctx: ApiContext) {
      const kinds = auditKinds(args.kinds);
      const events = await history(() => ctx.core.audit.list(t.id, { limit: pageSize(args.first, 100), ...eventRange(args, Date.now()), ...(kinds ? { kinds } : {}) }));
      return events.map(auditView);
    },
    degradation: (t: TenantParent, _: unknown, ctx: ApiContext) => ({
      pendingConsents: ctx.core.degradation.pendingConsents(t.id),
      status: ctx.core.degradation.status(t.id),
    }),
    async degradationEvents(t: TenantParent, args: RangeArgs & { first: number }, ctx: ApiContext) {
      const events = await history(() => ctx.core.audit.list(t.id, { limit: pageSize(args.first, 100), kinds: ['degradation'], ...eventRange(args, Date.now()) }));
      return events.map(auditView);
    },
  },

  Run: {
    metrics: (r: { tenantId: string; runId: string }, _: unknown, ctx: ApiContext) => ctx.core.windows.runMetrics(r.tenantId, r.runId) ?? null,
    steps: (r: { tenantId: string; runId: string }, { first }: { first: number }, ctx: ApiContext) =>
      runSteps(ctx.core.store.client, r.tenantId, r.runId, pageSize(first, 200)),
    subAgents: (r: { tenantId: string; runId: string }, _: unknown, ctx: ApiContext) => ctx.core.windows.runDetails(r.tenantId, r.runId)?.agentEdges ?? [],
    decision: (r: { tenantId: string; runId: string }, _: unknown, ctx: ApiContext) => decisionView(ctx.core.bus.latest(r.tenantId, r.runId)),
    async decisions(r: { tenantId: string; runId: string }, { first }: { first: number }, ctx: ApiContext) {
      const events = await ctx.core.audit.list(r.tenantId, { runId: r.runId, limit: pageSize(first, 100) });
      return events.map(auditView);
    },
  },

  Mutation: {
    async setTenantPolicy(_: unknown, { tenantId, policy }: { tenantId: string; policy: PolicyInput }, ctx: ApiContext) {
      const patch = {
        ...(policy.run ? { run: thresholdsInput(policy.run) } : {}),
        ...(policy.tenant ? { tenant: thresholdsInput(policy.tenant) } : {}),
        ...(policy.breaker ? { breaker: breakerInput(policy.breaker) } : {}),
        ...(policy.warnFraction !== null && policy.warnFraction !== undefined ? { warnFraction: policy.warnFraction } : {}),
      };
      if (isTenantAdmin(ctx)) {
        // the tier is named like any other key, so refuseLoosening reports it as the platform's
        await applyChange(ctx, { kind: 'tightenTenantPolicy', tenantId, patch: { ...patch, ...(policy.tier ? { tier: policy.tier } : {}) } as Tightening });
      } else {
        await applyChange(ctx, { kind: 'setTenantPolicy', tenantId, ...(policy.tier ? { tier: policy.tier } : {}), patch: patch as TenantOverrides });
      }
      return policyView(ctx.core.policy.forTenant(tenantId), ctx.core);
    },

    async revertTenantPolicy(_: unknown, { tenantId }: { tenantId: string }, ctx: ApiContext) {
      await applyChange(ctx, isTenantAdmin(ctx) ? { kind: 'tightenTenantPolicy', tenantId, patch: null } : { kind: 'revertTenantPolicy', tenantId });
      return policyView(ctx.core.policy.forTenant(tenantId), ctx.core);
    },

    async setTierThresholds(_: unknown, { tier, thresholds }: { tier: string; thresholds: PolicyInput }, ctx: ApiContext) {
      const patch = {
        ...(thresholds.run ? { run: thresholdsInput(thresholds.run) } : {}),
        ...(thresholds.tenant ? { tenant: thresholdsInput(thresholds.tenant) } : {}),
        ...(thresholds.breaker ? { breaker: breakerInput(thresholds.breaker) } : {}),
        ...(thresholds.warnFraction !== null && thresholds.warnFraction !== undefined ? { warnFraction: thresholds.warnFraction } : {}),
      };
      await applyChange(ctx, { kind: 'setTierThresholds', tier, patch } as PolicyChange);
      return true;
    },

    async forceOpenBreaker(_: unknown, args: { tenantId: string; runId?: string | null; reason: string; durationMs?: number | null }, ctx: ApiContext) {
      if (args.durationMs !== null && args.durationMs !== undefined && (args.durationMs < 1 || args.durationMs > 2_147_483_647)) {
        throw badInput('durationMs must be between 1 and 2147483647');
      }
      checkTenantOperation(ctx, args.tenantId, args.runId ?? undefined, 'forceOpenBreaker');
      const view = await withinLimit(ctx.core.engine.forceOpen(args.tenantId, args.runId ?? undefined, reasonText(args.reason), ctx.principal.name, args.durationMs ?? undefined));
      return { ...view, decision: decisionView(view.decision) };
    },

    async resetBreaker(_: unknown, args: { tenantId: string; runId?: string | null }, ctx: ApiContext) {
      checkTenantOperation(ctx, args.tenantId, args.runId ?? undefined, 'resetBreaker');
      const view = await withinLimit(ctx.core.engine.reset(args.tenantId, args.runId ?? undefined, ctx.principal.name));
      return { ...view, decision: decisionView(view.decision) };
    },

    async disableBreaker(_: unknown, args: { tenantId: string; runId?: string | null; reason: string }, ctx: ApiContext) {
      const view = await withinLimit(ctx.core.engine.disable(args.tenantId, args.runId ?? undefined, reasonText(args.reason), ctx.principal.name));
      return { ...view, decision: decisionView(view.decision) };
    },

    async approveDegradation(_: unknown, args: { tenantId: string; requestId: string }, ctx: ApiContext) {
      return consentAnswer(() => ctx.core.degradation.approve(args.tenantId, args.requestId, ctx.principal.name));
    },

    async refuseDegradation(_: unknown, args: { tenantId: string; requestId: string; reason?: string | null }, ctx: ApiContext) {
      return consentAnswer(() => ctx.core.degradation.refuse(args.tenantId, args.requestId, ctx.principal.name, args.reason ?? ''));
    },

    reserveQuota(_: unknown, args: { tenantId: string; tokens: number }, ctx: ApiContext) {
      if (!Number.isInteger(args.tokens) || args.tokens < 0) throw badInput('tokens must be 0 or more');
      const result = ctx.core.degradation.reserve(args.tenantId, args.tokens);
      return { ...result, limitedBy: result.shortfall?.axis ?? null };
    },

    async setTenantDegradation(_: unknown, args: { tenantId: string; policy: unknown }, ctx: ApiContext) {
      if (args.policy !== null && (typeof args.policy !== 'object' || Array.isArray(args.policy))) throw badInput('policy must be an object or null');
      if (!isTenantAdmin(ctx)) {
        await applyChange(ctx, { kind: 'setTenantDegradation', tenantId: args.tenantId, patch: args.policy as DegradationPatch | null });
        return true;
      }
      if (args.policy === null) throw forbiddenLoosening('a tenant admin drops its own tightenings with revertTenantPolicy', 'tenant admins may only tighten');
      await applyChange(ctx, { kind: 'tightenTenantPolicy', tenantId: args.tenantId, patch: { degradation: args.policy as DegradationPatch } });
      return true;
    },

    async acknowledgeEscalation(_: unknown, args: { tenantId: string; note: string }, ctx: ApiContext) {
      return auditView(await ctx.core.engine.acknowledgeEscalation(args.tenantId, ctx.principal.name, reasonText(args.note)));
    },
  },

  Subscription: {
    decisions: {
      subscribe(_: unknown, { tenantId, runId }: { tenantId: string; runId?: string | null }, ctx: ApiContext) {
        return ctx.subscriptions.registry.open(ctx.subscriptions.owner, 'decisions', () =>
          mapIterator(ctx.core.bus.subscribe(tenantId, runId ?? undefined), (decision) => ({ decisions: decisionView(decision) })),
        );
      },
    },
    breakerEvents: {
      subscribe(_: unknown, { tenantId }: { tenantId: string }, ctx: ApiContext) {
        return ctx.subscriptions.registry.open(ctx.subscriptions.owner, 'breakerEvents', () => mapIterator(ctx.core.bus.subscribeBreakerEvents(tenantId), (event) => ({ breakerEvents: breakerEventView(event) })));
      },
    },
  },
};

async function consentAnswer(answer: () => Promise<ConsentResult>) {
  try {
    const result = await answer();
    return { request: result.request, decision: decisionView(result.decision) };
  } catch (err) {
    // The same words for an unknown and another tenant's request id.
    if (err instanceof ConsentError) throw err.code === 'EXPIRED' ? badInput('that consent request has expired') : badInput('no such pending consent request');
    throw err;
  }
}

/** Maps an async iterator, passing return() through so an unsubscribe reaches the bus. */
function mapIterator<T, U>(source: AsyncIterableIterator<T>, map: (value: T) => U): AsyncIterableIterator<U> {
  return {
    async next() {
      const result = await source.next();
      return result.done ? { done: true, value: undefined } : { done: false, value: map(result.value) };
    },
    async return() {
      await source.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
