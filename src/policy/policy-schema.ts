// The shape of breakwater.yaml, as zod schemas. Every object is strict: a misspelt key is an error,
// never a silently ignored setting. The same schemas check run-time changes (GraphQL mutations),
// so a value refused in the file is refused over the API with the same message.
//
// Two forms exist for a tier: the complete TierPolicy the breakers read (tierPolicySchema), and the
// patch a file or a mutation lays over a base tier (tierPatchSchema), where everything is optional
// and a threshold set to null is removed.

import { MIN_SECRET_LENGTH } from '../api/secrets.js';
import { degradationSectionSchema } from '../degradation/degradation-schema.js';
import { notificationsSectionSchema } from '../notify/webhook-config.js';
import { z } from 'zod';
import { RUN_METRICS, type RunMetric } from '../windows/metric-names.js';
import { DEFAULT_TIER_NAME } from './builtin-tiers.js';
import type { ModelPrice, TenantOverrides, TierPolicy } from './policy-types.js';

// Names end up in metric labels, ClickHouse keys and log lines: keep them to a quiet alphabet.
const NAME_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;
const NAME_RULE = "must be 1 to 128 characters, each a letter, a digit, '_', '.', ':', '@' or '-'";

export const tierNameSchema = z.string().regex(NAME_PATTERN, NAME_RULE);
export const tenantIdSchema = z.string().regex(NAME_PATTERN, NAME_RULE);

/** Model names are whatever providers report (`gpt-4o`, `models/gemini-1.5-pro`, `claude-3-5-sonnet@20240620`). */
export const modelNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  // Matching control characters is the point of this pattern.
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

// setTimeout fires at once when given more than 2^31-1 ms, so a longer cooldown would never wait.
const MAX_TIMER_MS = 2_147_483_647;
// the error-ratio window keeps this many calls per run in memory
const MAX_LAST_N = 10_000;

const positiveNumber = z.number().positive('must be a positive number');
const positiveCount = z.int().positive('must be a positive whole number');
const ratio = z.number().positive('must be greater than 0').max(1, 'must be at most 1 (it is a ratio)');
const milliseconds = positiveCount.max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} (about 24.8 days)`);
const usdPerMillionTokens = z.number().min(0, 'must be 0 or more (USD per million tokens)');

/** Which values each metric's threshold accepts: counts are whole numbers, the error ratio is in (0, 1]. */
const THRESHOLD_RULES: Record<RunMetric, z.ZodType<number>> = {
  tokenVelocity10s: positiveNumber,
  tokenVelocity60s: positiveNumber,
  toolCallsPerMinute: positiveCount,
  modelCallsPerMinute: positiveCount,
  errorRatio: ratio,
  stepCount: positiveCount,
  subAgentDepth: positiveCount,
  durationSeconds: positiveNumber,
  costPerMinuteUsd: positiveNumber,
  costUsd: positiveNumber,
};

function shapeForEveryMetric<S extends z.ZodType>(schemaFor: (metric: RunMetric) => S): Record<RunMetric, S> {
  return Object.fromEntries(RUN_METRICS.map((metric) => [metric, schemaFor(metric)])) as Record<RunMetric, S>;
}

export const thresholdsSchema = z.strictObject(shapeForEveryMetric((metric) => THRESHOLD_RULES[metric].optional()));
export const thresholdPatchSchema = z.strictObject(
  shapeForEveryMetric((metric) => THRESHOLD_RULES[metric].nullable().optional()),
);

const breakerShape = {
  cooldownMs: milliseconds,
  maxCooldownMs: milliseconds,
  cooldownMultiplier: z
    .number()
    .min(1, 'must be at least 1 (1 keeps the cooldown constant)')
    .max(1_000, 'must be at most 1000'),
  probeSteps: positiveCount,
};

export const breakerSchema = z.strictObject(breakerShape).superRefine(({ cooldownMs, maxCooldownMs }, ctx) => {
  if (cooldownMs > maxCooldownMs) {
    ctx.addIssue({
      code: 'custom',
      path: ['cooldownMs'],
      message: `must not exceed maxCooldownMs (${cooldownMs} > ${maxCooldownMs})`,
    });
  }
});
export const breakerPatchSchema = z.strictObject(breakerShape).partial();

const errorRatioShape = {
  minCalls: positiveCount,
  lastN: positiveCount.max(MAX_LAST_N, `must be at most ${MAX_LAST_N}`),
};
export const errorRatioSettingsSchema = z.strictObject(errorRatioShape);
export const errorRatioPatchSchema = z.strictObject(errorRatioShape).partial();

export const warnFractionSchema = z
  .number()
  .gt(0, 'must be between 0 and 1, both excluded')
  .lt(1, 'must be between 0 and 1, both excluded');

/** A complete tier, as the breakers read it. Also checks a tenant's tier with its overrides applied. */
export const tierPolicySchema = z.strictObject({
  run: thresholdsSchema,
  tenant: thresholdsSchema,
  breaker: breakerSchema,
  errorRatio: errorRatioSettingsSchema,
  warnFraction: warnFractionSchema,
}) satisfies z.ZodType<TierPolicy>;

export const tenantOverridesSchema = z.strictObject({
  run: thresholdPatchSchema.optional(),
  tenant: thresholdPatchSchema.optional(),
  breaker: breakerPatchSchema.optional(),
  errorRatio: errorRatioPatchSchema.optional(),
  warnFraction: warnFractionSchema.optional(),
}) satisfies z.ZodType<TenantOverrides>;

/** A tier as a file or a mutation writes it: laid over `extends`, else the tier of the same name. */
export const tierPatchSchema = tenantOverridesSchema.extend({
  /** the tier this one starts from; needed by a new tier that does not set every field */
  extends: tierNameSchema.optional(),
});
export type TierPatch = z.output<typeof tierPatchSchema>;

export const tenantEntrySchema = z.strictObject({
  /** absent = the document's defaultTier */
  tier: tierNameSchema.optional(),
  overrides: tenantOverridesSchema.optional(),
});
export type TenantEntry = z.output<typeof tenantEntrySchema>;

export const modelPriceSchema = z.strictObject({
  input: usdPerMillionTokens,
  output: usdPerMillionTokens,
}) satisfies z.ZodType<ModelPrice>;

/** An attribute key naming a run (runKeys): as OTel attribute names go, printable and short. */
export const runKeySchema = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces (an attribute key)');

/**
 * A secret in the policy file: a literal (discouraged outside tests), or where to read it from,
 * so the file itself can be committed: `{ env: NAME }` or `{ file: /run/secrets/name }`.
 */
export const secretSchema = z.union([
  z.string().min(MIN_SECRET_LENGTH, `a token must be at least ${MIN_SECRET_LENGTH} characters`).max(4096),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name') }),
  z.strictObject({ file: z.string().min(1).max(4096) }),
]);

export const authSchema = z.strictObject({
  /** tokens that reach every tenant */
  adminTokens: z.array(secretSchema).max(100).default([]),
  tenants: z
    .record(
      tenantIdSchema,
      z.strictObject({
        /** the tenant's admins: read everything of the tenant, answer consent, only tighten its limits */
        adminTokens: z.array(secretSchema).max(100).default([]),
        /** what its agents (the SDK) hold: read decisions and runs, reserve quota, change nothing */
        agentTokens: z.array(secretSchema).max(100).default([]),
        /** the earlier name of agentTokens, with the same (agent) role */
        apiTokens: z.array(secretSchema).max(100).default([]),
        /** keys for OTLP ingest (:4318) that bind spans to this tenant */
        ingestKeys: z.array(secretSchema).max(100).default([]),
        /** keys for the model gateway (:4001): a client holding one calls models as this tenant */
        gatewayKeys: z.array(secretSchema).max(100).default([]),
      }),
    )
    .default({}),
});

/**
 * The top-level sections of breakwater.yaml. To add a section (`auth`, `degradation`, `ingest`):
 * add its schema here with a default, and its field to PolicyDocument; it is carried through
 * unchanged (resolve-policy.ts refuses to compile until both agree). Only `tiers` and `tenants`
 * need resolving against each other.
 */
export const POLICY_SECTIONS = {
  defaultTier: tierNameSchema.default(DEFAULT_TIER_NAME),
  prices: z.record(modelNameSchema, modelPriceSchema).default({}),
  runKeys: z.array(runKeySchema).max(32, 'at most 32 keys').default([]),
  tiers: z.record(tierNameSchema, tierPatchSchema).default({}),
  tenants: z.record(tenantIdSchema, tenantEntrySchema).default({}),
  auth: authSchema.default({ adminTokens: [], tenants: {} }),
  degradation: degradationSectionSchema.prefault({}),
  notifications: notificationsSectionSchema(secretSchema, tenantIdSchema),
};

export const policyFileSchema = z.strictObject(POLICY_SECTIONS);
export type PolicyFile = z.output<typeof policyFileSchema>;
