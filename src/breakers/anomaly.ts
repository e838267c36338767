import type { RunMetric } from '../windows/metric-names.js';
import type { Crossing } from './threshold-rules.js';

/** The tenant metrics watched against each tenant's own history. */
export const ANOMALY_METRICS = ['tokenVelocity60s', 'toolCallsPerMinute', 'modelCallsPerMinute'] as const satisfies readonly RunMetric[];
export type AnomalyMetric = (typeof ANOMALY_METRICS)[number];

export interface Baseline {
  median: number;
  /** median absolute deviation */
  mad: number;
  /** minutes of history behind it */
  samples: number;
}

export interface AnomalyOptions {
  /** robust z-score above which a value is anomalous */
  zThreshold: number;
  /** minutes of history needed before a baseline is trusted */
  minSamples: number;
}

export const DEFAULT_ANOMALY_OPTIONS: AnomalyOptions = { zThreshold: 6, minSamples: 30 };

/** 1.4826 × MAD estimates the standard deviation of normally distributed data. */
const MAD_TO_SIGMA = 1.4826;

/**
 * Per-tenant anomaly detection against the tenant's own baseline with a robust z-score,
 * (value - median) / (1.4826 × MAD): medians are not dragged up by the very spikes being looked
 * for, as a mean and standard deviation would be. Only upward anomalies matter here (runaway
 * usage); a MAD of 0 (perfectly steady history) is floored at 1 % of the median, and at 1 unit.
 */
export class AnomalyDetector {
  #baselines = new Map<string, Partial<Record<AnomalyMetric, Baseline>>>();

  constructor(private readonly options: AnomalyOptions = DEFAULT_ANOMALY_OPTIONS) {}

  /** Replaces every baseline (the job recomputes them all at once). */
  setBaselines(baselines: Map<string, Partial<Record<AnomalyMetric, Baseline>>>): void {
    this.#baselines = baselines;
  }

  baseline(tenantId: string, metric: AnomalyMetric): Baseline | undefined {
    return this.#baselines.get(tenantId)?.[metric];
  }

  /** Warnings for the tenant's current metrics; the crossing's threshold is the anomaly bound. */
  check(tenantId: string, metrics: Readonly<Record<string, number>>): Crossing[] {
    const baselines = this.#baselines.get(tenantId);
    if (baselines === undefined) return [];
    const warnings: Crossing[] = [];
    for (const metric of ANOMALY_METRICS) {
      const baseline = baselines[metric];
      const observed = metrics[metric];
      if (baseline === undefined || observed === undefined || baseline.samples < this.options.minSamples) continue;
      const bound = anomalyBound(baseline, this.options.zThreshold);
      if (observed > bound) warnings.push({ metric: `anomaly:${metric}`, threshold: bound, observed });
    }
    return warnings;
  }
}

export function anomalyBound(baseline: Baseline, zThreshold: number): number {
  const sigma = MAD_TO_SIGMA * Math.max(baseline.mad, baseline.median * 0.01, 1);
  return baseline.median + zThreshold * sigma;
}
