// Health of one provider, or of one model at a provider: latency quantiles, calls per minute and
// the error ratio of provider failures (5xx, timeouts: not 429s, not the caller's 4xx), over model-call spans. Few of these exist (bounded by the store), so they can
// afford a ~10 KB latency sketch each.

import type { ErrorRatioSettings } from '../policy/policy-types.js';
import { CallRing, combinedErrorRatio } from './call-ring.js';
import { LatencySketch } from './latency-sketch.js';
import type { LruNode } from './lru-list.js';
import type { ProviderMetric } from './metric-names.js';
import { RollingCounter } from './rolling-counter.js';
import type { SpanFacts } from './span-facts.js';
import { WINDOW_SECONDS } from './window-time.js';

const CALLS = 0;
const ERRORS = 1;

export class ProviderWindow implements LruNode<ProviderWindow> {
  lruPrev: ProviderWindow | null = null;
  lruNext: ProviderWindow | null = null;
  lastSeenMs: number;
  readonly provider: string;
  /** '' for the provider-level window */
  readonly model: string;

  private readonly counter = new RollingCounter(
    { amounts: 0, amountType: Float64Array, counts: 2, countType: Uint32Array },
    WINDOW_SECONDS,
  );
  private readonly latency = new LatencySketch();
  private readonly calls: CallRing;

  constructor(provider: string, model: string, nowMs: number, lastN: number) {
    this.provider = provider;
    this.model = model;
    this.lastSeenMs = nowMs;
    this.calls = new CallRing(lastN);
  }

  /** A model call; late spans are ignored (these windows hold rates only). */
  record(f: SpanFacts, windowSecond: number): void {
    if (!f.inWindow) return;
    this.counter.advance(windowSecond);
    this.latency.advance(windowSecond);
    const slot = this.counter.slot(f.endSec);
    if (slot >= 0) {
      this.counter.addCountAt(slot, CALLS);
      if (f.isProviderFailure) this.counter.addCountAt(slot, ERRORS);
    }
    this.latency.add(f.endSec, f.latencyMs);
    this.calls.push(f.isProviderFailure);
  }

  metrics(windowSecond: number, settings: ErrorRatioSettings): Record<ProviderMetric, number> {
    const calls = this.counter.sumCount(CALLS, windowSecond, WINDOW_SECONDS);
    const errors = this.counter.sumCount(ERRORS, windowSecond, WINDOW_SECONDS);
    return {
      latencyP50Ms: this.latency.quantile(0.5, windowSecond),
      latencyP95Ms: this.latency.quantile(0.95, windowSecond),
      callsPerMinute: calls,
      errorRatio: combinedErrorRatio(this.calls, calls, errors, settings.minCalls),
    };
  }
}
