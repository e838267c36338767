import type { DegradationSection } from '../degradation/degradation-schema.js';
import type { NotificationsSection } from '../notify/webhook-config.js';
import type { RunMetric } from '../windows/metric-names.js';

/** A threshold per metric; a metric with no threshold never trips. */
export type Thresholds = Partial<Record<RunMetric, number>>;

/** Thresholds laid over a tier's: a number replaces the tier's threshold, null removes it. */
export type ThresholdPatch = Partial<Record<RunMetric, number | null>>;

export interface BreakerSettings {
  /** how long an OPEN breaker waits before HALF_OPEN */
  cooldownMs: number;
  /** cap of the growing cooldown after repeated trips */
  maxCooldownMs: number;
  /** each re-open multiplies the cooldown by this */
  cooldownMultiplier: number;
  /** steps admitted while HALF_OPEN before closing again */
  probeSteps: number;
}

export interface ErrorRatioSettings {
  /** the error ratio counts only after this many calls */
  minCalls: number;
  /** the count-based window: the last N calls */
  lastN: number;
}

export interface TierPolicy {
  /** thresholds applied to each run on its own */
  run: Thresholds;
  /** thresholds applied to the tenant's runs summed */
  tenant: Thresholds;
  breaker: BreakerSettings;
  errorRatio: ErrorRatioSettings;
  /** WARN when a metric reaches this fraction of its threshold (0 < f < 1) */
  warnFraction: number;
}

export interface TenantOverrides {
  run?: ThresholdPatch;
  tenant?: ThresholdPatch;
  breaker?: Partial<BreakerSettings>;
  errorRatio?: Partial<ErrorRatioSettings>;
  warnFraction?: number;
}

export interface TenantPolicy {
  tier: string;
  overrides: TenantOverrides;
}

/** USD per million tokens */
export interface ModelPrice {
  input: number;
  output: number;
}

/** A literal secret, or where to read it: an environment variable or a file. */
export type SecretRef = string | { env: string } | { file: string };

export interface AuthSection {
  adminTokens: SecretRef[];
  tenants: Record<string, { adminTokens: SecretRef[]; agentTokens: SecretRef[]; apiTokens: SecretRef[]; ingestKeys: SecretRef[]; gatewayKeys: SecretRef[] }>;
}

export interface PolicyDocument {
  /** tier for tenants not listed under `tenants` */
  defaultTier: string;
  tiers: Record<string, TierPolicy>;
  tenants: Record<string, TenantPolicy>;
  /** keyed by model name as it appears in gen_ai.request.model / gen_ai.response.model */
  prices: Record<string, ModelPrice>;
  /** span attributes that name a run, tried in order after agent.run.id and before the conversation ids */
  runKeys: string[];
  /** API tokens and ingest keys; never returned by the API nor persisted with run-time changes */
  auth: AuthSection;
  /** fallback ladders, consent, triggers, quota buckets, provider health (src/degradation/degradation-schema.ts) */
  degradation: DegradationSection;
  /** webhooks for trips, escalations, consent requests and tier changes (src/notify/webhook-config.ts); set only by the file */
  notifications: NotificationsSection;
}

/** A tenant's tier with its overrides applied: what the breakers evaluate against. */
export interface EffectivePolicy extends TierPolicy {
  tenantId: string;
  tier: string;
}
