import type { Thresholds } from '../policy/policy-types.js';

/** One metric measured against its threshold. */
export interface Crossing {
  metric: string;
  threshold: number;
  observed: number;
}

export interface ThresholdEvaluation {
  /** metrics over their threshold, most exceeded (observed / threshold) first */
  trips: Crossing[];
  /** metrics in the warning band and not tripping, closest to their threshold first */
  warnings: Crossing[];
}

export const NO_CROSSINGS: ThresholdEvaluation = Object.freeze({ trips: [], warnings: [] }) as ThresholdEvaluation;

/**
 * Compares measured metrics with a tenant's (or run's) thresholds.
 *
 * The threshold is the most a metric is allowed to reach: a metric exactly AT its threshold does
 * not trip (it warns), only a value strictly above it trips. So `stepCount: 50` admits 50 steps and
 * trips on the 51st, which is how operators read "max 50 steps".
 *
 * A metric warns when `observed >= warnFraction * threshold` (exactly at the fraction warns) and it
 * is not tripping. A metric at 0 never warns, so a threshold of 0 ("none allowed") is quiet until
 * the first occurrence trips it.
 *
 * Metrics with no threshold, or with no finite observation, are not evaluated: a missing window
 * value must not be mistaken for a zero.
 */
export function evaluateThresholds(
  metrics: Readonly<Record<string, number>>,
  thresholds: Thresholds,
  warnFraction: number,
): ThresholdEvaluation {
  const trips: Crossing[] = [];
  const warnings: Crossing[] = [];
  for (const [metric, threshold] of Object.entries(thresholds) as [string, number | undefined][]) {
    if (threshold === undefined || !Number.isFinite(threshold)) continue;
    const observed = metrics[metric];
    if (observed === undefined || !Number.isFinite(observed)) continue;
    if (observed > threshold) trips.push({ metric, threshold, observed });
    else if (observed > 0 && observed >= warnFraction * threshold) warnings.push({ metric, threshold, observed });
  }
  trips.sort(byRatioDescending);
  warnings.sort(byRatioDescending);
  return { trips, warnings };
}

/** How far past (or towards) its threshold a crossing is; a zero threshold crossed is infinitely far. */
export function crossingRatio(crossing: Crossing): number {
  if (crossing.threshold === 0) return crossing.observed > 0 ? Infinity : 0;
  return crossing.observed / crossing.threshold;
}

function byRatioDescending(a: Crossing, b: Crossing): number {
  const ra = crossingRatio(a);
  const rb = crossingRatio(b);
  if (ra === rb) return a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0;
  return rb - ra;
}
