// The tiers that exist without any file, so an empty or missing breakwater.yaml is a working policy.
// Limits grow from free to enterprise; a file's tier of the same name is laid over these, field by
// field. Keep breakwater.example.yaml's comments in step when changing a number here.

import { deepFreeze } from './plain-data.js';
import type { TierPolicy } from './policy-types.js';

/** The tier of tenants not listed under `tenants` when the file names no `defaultTier`. */
export const DEFAULT_TIER_NAME = 'free';

const free: TierPolicy = {
  warnFraction: 0.5,
  run: {
    // a 10 s window lets a short burst run faster than the 60 s average allows
    tokenVelocity10s: 1_000,
    tokenVelocity60s: 500,
    toolCallsPerMinute: 30,
    modelCallsPerMinute: 30,
    errorRatio: 0.5,
    stepCount: 100,
    subAgentDepth: 2,
    durationSeconds: 600,
    costPerMinuteUsd: 0.5,
    costUsd: 1,
  },
  // No tenant-wide costUsd: what window a tenant's spend counts over is the operator's choice.
  tenant: {
    tokenVelocity60s: 2_000,
    toolCallsPerMinute: 120,
    modelCallsPerMinute: 120,
    errorRatio: 0.5,
    costPerMinuteUsd: 1,
  },
  breaker: { cooldownMs: 30_000, maxCooldownMs: 600_000, cooldownMultiplier: 2, probeSteps: 3 },
  errorRatio: { minCalls: 10, lastN: 20 },
};

const pro: TierPolicy = {
  warnFraction: 0.5,
  run: {
    tokenVelocity10s: 4_000,
    tokenVelocity60s: 2_000,
    toolCallsPerMinute: 120,
    modelCallsPerMinute: 120,
    errorRatio: 0.5,
    stepCount: 500,
    subAgentDepth: 4,
    durationSeconds: 3_600,
    costPerMinuteUsd: 5,
    costUsd: 20,
  },
  tenant: {
    tokenVelocity60s: 20_000,
    toolCallsPerMinute: 1_200,
    modelCallsPerMinute: 1_200,
    errorRatio: 0.5,
    costPerMinuteUsd: 20,
  },
  breaker: { cooldownMs: 15_000, maxCooldownMs: 300_000, cooldownMultiplier: 2, probeSteps: 5 },
  errorRatio: { minCalls: 20, lastN: 50 },
};

const enterprise: TierPolicy = {
  warnFraction: 0.5,
  run: {
    tokenVelocity10s: 20_000,
    tokenVelocity60s: 10_000,
    toolCallsPerMinute: 600,
    modelCallsPerMinute: 600,
    errorRatio: 0.6,
    stepCount: 2_000,
    subAgentDepth: 8,
    durationSeconds: 14_400,
    costPerMinuteUsd: 25,
    costUsd: 200,
  },
  tenant: {
    tokenVelocity60s: 200_000,
    toolCallsPerMinute: 12_000,
    modelCallsPerMinute: 12_000,
    errorRatio: 0.6,
    costPerMinuteUsd: 200,
  },
  breaker: { cooldownMs: 10_000, maxCooldownMs: 120_000, cooldownMultiplier: 2, probeSteps: 10 },
  errorRatio: { minCalls: 50, lastN: 100 },
};

export const BUILTIN_TIERS: Readonly<Record<string, TierPolicy>> = deepFreeze({ free, pro, enterprise });
