// The `degradation` section of breakwater.yaml, as zod schemas: per-tenant fallback ladders,
// consent, residency exclusions, triggers, recovery, tenant quota buckets, and the settings of the
// provider health breakers and quota telemetry.
//
// Shape: `defaults` is a complete policy (every field has a default); each entry under `tenants`
// is a patch laid over `defaults` the way tenant overrides are laid over a tier (objects merge key
// by key, lists replace, null removes an optional setting), and the result is checked again, so a
// tenant can never end up with, say, a ladder whose primary is excluded by its own residency rule.
// Task overrides (`tasks:`) replace the ladder-related fields for runs of that task.
//
// This module must not import policy-schema.ts at run time: policy-schema imports it (the
// `degradation` entry of POLICY_SECTIONS), and an import cycle would read its schemas before they
// exist.

import { z } from 'zod';
import { mergePatch } from '../policy/plain-data.js';

const NAME_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;
const NAME_RULE = "must be 1 to 128 characters, each a letter, a digit, '_', '.', ':', '@' or '-'";
// setTimeout fires at once when given more than 2^31-1 ms.
const MAX_TIMER_MS = 2_147_483_647;

/** Tier numbers as the issue fixes them: 0 primary … 3 small model, 4 suspend with resume. */
export const SUSPEND_TIER = 4;
export const MAX_MODEL_TIER = 3;

const tenantIdSchema = z.string().regex(NAME_PATTERN, NAME_RULE);
/** Provider, model, endpoint, region, key and task names: whatever the spans and the operator use. */
const labelSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  // Matching control characters is the point of this pattern.
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

const positiveNumber = z.number().positive('must be a positive number');
const positiveCount = z.int().positive('must be a positive whole number');
const ratio = z.number().positive('must be greater than 0').max(1, 'must be at most 1 (it is a ratio)');
const milliseconds = positiveCount.max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} (about 24.8 days)`);
const millisecondsOrZero = z.int().min(0, 'must be 0 or more').max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS}`);
const multiplier = z.number().min(1, 'must be at least 1 (1 keeps it constant)').max(1_000, 'must be at most 1000');
const fractionBetween = z.number().gt(0, 'must be between 0 and 1, both excluded').lt(1, 'must be between 0 and 1, both excluded');

/** One rung of a ladder: a model at a provider (tiers 0 to 3). Tier 4, suspend, has no entry. */
export const tierEntrySchema = z.strictObject({
  tier: z
    .int('must be a whole number')
    .min(0, 'must be 0 to 3')
    .max(MAX_MODEL_TIER, 'must be 0 to 3 (tier 4, suspend, needs no entry: permit it with permittedTiers)'),
  /** gen_ai.provider.name as the spans report it */
  provider: labelSchema,
  /** gen_ai.request.model as the agent should send it */
  model: labelSchema,
  /** the provider key whose quota this tier draws on (gen_ai.provider.key); default: any key of the provider */
  key: labelSchema.optional(),
  /** where the calls go, for residency exclusions */
  endpoint: labelSchema.optional(),
  region: labelSchema.optional(),
});
export type TierEntry = z.output<typeof tierEntrySchema>;

const tiersSchema = z.array(tierEntrySchema).max(32, 'at most 32 entries');
const permittedTiersSchema = z
  .array(z.int('must be a whole number').min(0, 'must be 0 to 4').max(SUSPEND_TIER, 'must be 0 to 4'))
  .max(5, 'at most 5 entries');

// Field schemas without defaults: the patch forms reuse them (a default inside a patch would
// overwrite what `defaults` says).
const consentFields = {
  /** a switch to `fromTier` or below waits for approve()/refuse() */
  required: z.boolean(),
  fromTier: z.int('must be a whole number').min(1, 'must be 1 to 3').max(MAX_MODEL_TIER, 'must be 1 to 3'),
  /** an unanswered request is refused after this long */
  timeoutMs: milliseconds,
};
const residencyFields = {
  excludedProviders: z.array(labelSchema).max(256),
  excludedEndpoints: z.array(labelSchema).max(256),
  excludedRegions: z.array(labelSchema).max(256),
};
const triggerFields = {
  /** the tenant's SLA: p95 latency of the model in use above this degrades (ms) */
  latencyP95Ms: positiveNumber,
  /** the p95 counts only when the model served at least this many calls in the last minute */
  latencyMinCallsPerMinute: z.number().min(0, 'must be 0 or more'),
  /** the tenant's budget: spend above this rate moves it to a cheaper tier (USD per minute) */
  costPerMinuteUsd: positiveNumber,
  /** a latency or cost trigger must hold this long before it acts */
  holdMs: millisecondsOrZero,
  /** and clears only below this fraction of its threshold (hysteresis) */
  clearFraction: fractionBetween,
  /** a 429 whose quota resets further away than this is capacity exhaustion: route to another tier */
  maxThrottleWaitMs: milliseconds,
};
const recoveryFields = {
  /** a better tier must stay clear this long before the tenant is promoted to it */
  windowMs: milliseconds,
  /** successful calls on the promoted tier before the promotion is confirmed */
  probeCalls: positiveCount.max(1_000, 'must be at most 1000'),
  /** each failed probe multiplies the window by this (capped by maxWindowMs) */
  windowMultiplier: multiplier,
  maxWindowMs: milliseconds,
};
const quotaFields = {
  requestsPerMinute: positiveCount,
  tokensPerMinute: positiveCount,
  /** bucket sizes (the largest burst); default one minute's worth */
  requestsBurst: positiveCount,
  tokensBurst: positiveCount,
};

const consentSchema = z.strictObject({
  required: consentFields.required.default(false),
  fromTier: consentFields.fromTier.default(1),
  timeoutMs: consentFields.timeoutMs.default(900_000),
});
const residencySchema = z.strictObject({
  excludedProviders: residencyFields.excludedProviders.default([]),
  excludedEndpoints: residencyFields.excludedEndpoints.default([]),
  excludedRegions: residencyFields.excludedRegions.default([]),
});
const triggersSchema = z.strictObject({
  latencyP95Ms: triggerFields.latencyP95Ms.optional(),
  latencyMinCallsPerMinute: triggerFields.latencyMinCallsPerMinute.default(10),
  costPerMinuteUsd: triggerFields.costPerMinuteUsd.optional(),
  holdMs: triggerFields.holdMs.default(10_000),
  clearFraction: triggerFields.clearFraction.default(0.8),
  maxThrottleWaitMs: triggerFields.maxThrottleWaitMs.default(60_000),
});
const recoverySchema = z
  .strictObject({
    windowMs: recoveryFields.windowMs.default(60_000),
    probeCalls: recoveryFields.probeCalls.default(3),
    windowMultiplier: recoveryFields.windowMultiplier.default(2),
    maxWindowMs: recoveryFields.maxWindowMs.default(900_000),
  })
  .superRefine(({ windowMs, maxWindowMs }, ctx) => {
    if (windowMs > maxWindowMs) {
      ctx.addIssue({ code: 'custom', path: ['windowMs'], message: `must not exceed maxWindowMs (${windowMs} > ${maxWindowMs})` });
    }
  });
const quotaSchema = z.strictObject({
  requestsPerMinute: quotaFields.requestsPerMinute.optional(),
  tokensPerMinute: quotaFields.tokensPerMinute.optional(),
  requestsBurst: quotaFields.requestsBurst.optional(),
  tokensBurst: quotaFields.tokensBurst.optional(),
});

/** What a task (gen_ai.operation.name, or the task attribute) changes for its runs. */
export const taskOverrideSchema = z.strictObject({
  enabled: z.boolean().optional(),
  tiers: tiersSchema.optional(),
  permittedTiers: permittedTiersSchema.optional(),
  consent: z.strictObject(consentFields).partial().optional(),
  notify: z.boolean().optional(),
  residency: z.strictObject(residencyFields).partial().optional(),
});
export type TaskOverride = z.output<typeof taskOverrideSchema>;

const policyShape = {
  /** false: the tenant never changes tier (quota shaping still applies) */
  enabled: z.boolean().default(true),
  /** the ladder, best first; empty = the tenant has no fallback and is never switched */
  tiers: tiersSchema.default([]),
  /** tiers the tenant accepts; 4 is suspend. Without 4, no usable tier means HALT */
  permittedTiers: permittedTiersSchema.default([0, 1, 2, 3, SUSPEND_TIER]),
  consent: consentSchema.prefault({}),
  /** tier changes are pushed to the breaker-event stream (and onNotify) as they are recorded */
  notify: z.boolean().default(true),
  residency: residencySchema.prefault({}),
  triggers: triggersSchema.prefault({}),
  recovery: recoverySchema.prefault({}),
  quota: quotaSchema.prefault({}),
  tasks: z.record(labelSchema, taskOverrideSchema).default({}),
};

/** A tenant's complete degradation policy. */
export const degradationPolicySchema = z.strictObject(policyShape).superRefine((policy, ctx) => {
  checkLadder(policy, [], ctx);
  for (const [task, override] of Object.entries(policy.tasks)) {
    checkLadder(applyTaskOverride(policy, override), ['tasks', task], ctx);
  }
});
export type DegradationPolicy = z.output<typeof degradationPolicySchema>;

/** A tenant's entry: laid over `defaults`; null removes an optional setting. */
export const degradationPatchSchema = z.strictObject({
  enabled: z.boolean().optional(),
  tiers: tiersSchema.optional(),
  permittedTiers: permittedTiersSchema.optional(),
  consent: z.strictObject(consentFields).partial().optional(),
  notify: z.boolean().optional(),
  residency: z.strictObject(residencyFields).partial().optional(),
  triggers: z
    .strictObject({
      ...triggerFields,
      latencyP95Ms: triggerFields.latencyP95Ms.nullable(),
      costPerMinuteUsd: triggerFields.costPerMinuteUsd.nullable(),
    })
    .partial()
    .optional(),
  recovery: z.strictObject(recoveryFields).partial().optional(),
  quota: z
    .strictObject({
      requestsPerMinute: quotaFields.requestsPerMinute.nullable(),
      tokensPerMinute: quotaFields.tokensPerMinute.nullable(),
      requestsBurst: quotaFields.requestsBurst.nullable(),
      tokensBurst: quotaFields.tokensBurst.nullable(),
    })
    .partial()
    .optional(),
  /** replaces the task overrides of `defaults` as a whole; `{}` clears them */
  tasks: z.record(labelSchema, taskOverrideSchema).optional(),
});
export type DegradationPatch = z.output<typeof degradationPatchSchema>;

/** Resilience4j-like settings of the provider and model health breakers. */
export const providerHealthSchema = z
  .strictObject({
    /** the count-based window: the last N calls … */
    slidingWindowSize: positiveCount.max(10_000, 'must be at most 10000').default(100),
    /** … that are at most this old */
    slidingWindowMs: milliseconds.default(60_000),
    /** rates count only once the window holds this many calls */
    minimumCalls: positiveCount.default(20),
    /** OPEN when failures / calls reaches this (5xx, timeouts, connection errors; never 429) */
    failureRateThreshold: ratio.default(0.5),
    /** OPEN when slow calls / calls reaches this (1 = every call slow) */
    slowCallRateThreshold: ratio.default(1),
    slowCallDurationMs: milliseconds.default(60_000),
    /** OPEN lasts this long, then HALF_OPEN admits probe calls */
    waitDurationOpenMs: milliseconds.default(30_000),
    /** each re-open from HALF_OPEN multiplies the wait by this (capped by maxWaitDurationMs) */
    waitMultiplier: multiplier.default(2),
    maxWaitDurationMs: milliseconds.default(300_000),
    /** calls evaluated in HALF_OPEN before closing or re-opening */
    permittedCallsHalfOpen: positiveCount.max(1_000, 'must be at most 1000').default(5),
    /** HALF_OPEN without enough calls re-opens after this long; 0 waits for the calls */
    maxWaitHalfOpenMs: millisecondsOrZero.default(0),
    /**
     * The shared breaker of a provider or model (fed by every tenant) opens only when at least this
     * many tenants are over its thresholds on their own calls (each with its share of minimumCalls):
     * one tenant's spans can open its own breakers, never everyone's.
     */
    sharedMinTenants: positiveCount.default(2),
  })
  .superRefine((s, ctx) => {
    if (s.minimumCalls > s.slidingWindowSize) {
      ctx.addIssue({ code: 'custom', path: ['minimumCalls'], message: `must not exceed slidingWindowSize (${s.minimumCalls} > ${s.slidingWindowSize})` });
    }
    if (s.waitDurationOpenMs > s.maxWaitDurationMs) {
      ctx.addIssue({ code: 'custom', path: ['waitDurationOpenMs'], message: `must not exceed maxWaitDurationMs (${s.waitDurationOpenMs} > ${s.maxWaitDurationMs})` });
    }
  });
export type ProviderHealthSettings = z.output<typeof providerHealthSchema>;

export const quotaTelemetrySchema = z
  .strictObject({
    /** WARN when a provider key's utilization reaches this … */
    warnAt: ratio.default(0.7),
    /** … and WARN (critical) at this */
    criticalAt: ratio.default(0.9),
    /** rate-limit headers older than this no longer describe the key */
    staleAfterMs: milliseconds.default(60_000),
  })
  .superRefine(({ warnAt, criticalAt }, ctx) => {
    if (warnAt > criticalAt) ctx.addIssue({ code: 'custom', path: ['warnAt'], message: `must not exceed criticalAt (${warnAt} > ${criticalAt})` });
  });
export type QuotaTelemetrySettings = z.output<typeof quotaTelemetrySchema>;

export const degradationSectionSchema = z
  .strictObject({
    /** the span attribute naming a run's task for `tasks:` overrides (else gen_ai.operation.name) */
    taskAttribute: labelSchema.default('breakwater.task'),
    providerHealth: providerHealthSchema.prefault({}),
    quotaTelemetry: quotaTelemetrySchema.prefault({}),
    /** the policy of every tenant, and the base of each entry under `tenants` */
    defaults: degradationPolicySchema.prefault({}),
    tenants: z.record(tenantIdSchema, degradationPatchSchema).default({}),
  })
  .superRefine((section, ctx) => {
    for (const [tenantId, patch] of Object.entries(section.tenants)) {
      const checked = degradationPolicySchema.safeParse(mergePatch(section.defaults, patch));
      if (checked.success) continue;
      for (const issue of checked.error.issues) {
        ctx.addIssue({ code: 'custom', path: ['tenants', tenantId, ...issue.path], message: issue.message });
      }
    }
  });
export type DegradationSection = z.output<typeof degradationSectionSchema>;

/** The section of a file that says nothing about degradation. */
export function defaultDegradationSection(): DegradationSection {
  return degradationSectionSchema.parse({});
}

/**
 * The section with a tenant's entry replaced (`null` removes it), for a run-time change: the result
 * is unchecked, so put it in the candidate document and let the policy's checks (buildPolicy) judge
 * it, as they judge the file.
 */
export function withTenantDegradation(section: DegradationSection, tenantId: string, patch: DegradationPatch | null): unknown {
  const tenants = Object.fromEntries(Object.entries(section.tenants).filter(([id]) => id !== tenantId));
  if (patch !== null) tenants[tenantId] = patch;
  return { ...section, tenants };
}

const resolved = new WeakMap<DegradationSection, Map<string, DegradationPolicy>>();

/**
 * A tenant's policy: `defaults` with its entry laid over. Cached per section object, so a reload
 * (a new section) is seen at once. The section was checked when parsed, so this does not throw for
 * a parsed section; for a hand-built one it throws the zod error.
 */
export function tenantDegradationPolicy(section: DegradationSection, tenantId: string): DegradationPolicy {
  let cache = resolved.get(section);
  if (cache === undefined) resolved.set(section, (cache = new Map()));
  let policy = cache.get(tenantId);
  if (policy === undefined) {
    const patch = Object.hasOwn(section.tenants, tenantId) ? section.tenants[tenantId] : undefined;
    policy = patch === undefined ? section.defaults : degradationPolicySchema.parse(mergePatch(section.defaults, patch));
    if (cache.size >= 10_000) cache.clear();
    cache.set(tenantId, policy);
  }
  return policy;
}

/** The fields a task changes; everything else (triggers, recovery, quota) stays the tenant's. */
export interface TaskPolicy {
  task: string;
  enabled: boolean;
  tiers: readonly TierEntry[];
  permittedTiers: readonly number[];
  consent: DegradationPolicy['consent'];
  notify: boolean;
  residency: DegradationPolicy['residency'];
}

export function applyTaskOverride(policy: DegradationPolicy, override: TaskOverride | undefined): Omit<TaskPolicy, 'task'> {
  return {
    enabled: override?.enabled ?? policy.enabled,
    tiers: override?.tiers ?? policy.tiers,
    permittedTiers: override?.permittedTiers ?? policy.permittedTiers,
    consent: { ...policy.consent, ...definedFields(override?.consent) },
    notify: override?.notify ?? policy.notify,
    residency: { ...policy.residency, ...definedFields(override?.residency) },
  };
}

/** The policy of a task ('' = the tenant's default). */
export function taskPolicy(policy: DegradationPolicy, task: string): TaskPolicy {
  const override = task !== '' && Object.hasOwn(policy.tasks, task) ? policy.tasks[task] : undefined;
  return { task: override === undefined ? '' : task, ...applyTaskOverride(policy, override) };
}

/** Whether residency rules exclude a ladder entry. */
export function isExcluded(entry: TierEntry, residency: DegradationPolicy['residency']): boolean {
  return (
    residency.excludedProviders.includes(entry.provider) ||
    (entry.endpoint !== undefined && residency.excludedEndpoints.includes(entry.endpoint)) ||
    (entry.region !== undefined && residency.excludedRegions.includes(entry.region))
  );
}

function checkLadder(policy: Omit<TaskPolicy, 'task'>, at: readonly PropertyKey[], ctx: z.RefinementCtx): void {
  const { tiers, permittedTiers, residency } = policy;
  const issue = (path: readonly PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path: [...at, ...path], message });
  if (new Set(permittedTiers).size !== permittedTiers.length) issue(['permittedTiers'], 'must not list a tier twice');
  if (!permittedTiers.includes(0)) issue(['permittedTiers'], 'must include 0 (the primary)');
  if (tiers.length === 0) return;
  if (tiers[0]?.tier !== 0) issue(['tiers', 0, 'tier'], 'the first entry must be tier 0 (the primary)');
  for (let i = 1; i < tiers.length; i++) {
    const entry = tiers[i] as TierEntry;
    const previous = tiers[i - 1] as TierEntry;
    if (entry.tier === 0) issue(['tiers', i, 'tier'], 'only one entry may be tier 0 (the primary)');
    else if (entry.tier < previous.tier) issue(['tiers', i, 'tier'], `tiers must be listed best first (${entry.tier} after ${previous.tier})`);
  }
  const seen = new Set<string>();
  tiers.forEach((entry, i) => {
    const id = `${entry.provider}\u0000${entry.model}\u0000${entry.key ?? ''}`;
    if (seen.has(id)) issue(['tiers', i], `lists ${entry.provider}/${entry.model} twice`);
    seen.add(id);
  });
  const primary = tiers[0];
  if (primary !== undefined && isExcluded(primary, residency)) {
    issue(['tiers', 0], `the primary (${primary.provider}/${primary.model}) is excluded by the residency rules`);
  }
}

function definedFields<T extends object>(value: T | undefined): Partial<T> {
  if (value === undefined) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
