// A tenant's aggregate over its runs. Rates come from the tenant's own usage ring, updated on the
// same record call as the run's (never by summing runs at read time), so a read is O(ring) however
// many runs the tenant has. Cumulative figures follow the runs the store still holds: stepCount
// and costUsd are kept as running sums (a run leaving the store is subtracted); subAgentDepth and
// durationSeconds are running maxima, recomputed over the tenant's runs only after the run that
// held the maximum was evicted.

import type { ErrorRatioSettings } from '../policy/policy-types.js';
import { CallRing } from './call-ring.js';
import { LruList, type LruNode } from './lru-list.js';
import type { RunMetric } from './metric-names.js';
import { metricRecord, type RunWindow, type TenantRunLink } from './run-window.js';
import type { SpanFacts } from './span-facts.js';
import { carriesUsage, UsageRing } from './usage-ring.js';

export class TenantWindow implements LruNode<TenantWindow> {
  lruPrev: TenantWindow | null = null;
  lruNext: TenantWindow | null = null;
  lastSeenMs: number;
  readonly tenantId: string;
  /** the tenant's runs still held by the store, by run id */
  readonly runs = new Map<string, RunWindow>();
  /** the same runs, least recently used first: where the tenant's own bound takes room from */
  readonly runOrder = new LruList<TenantRunLink>();

  private readonly usage = new UsageRing(false);
  private calls: CallRing | null = null;
  private stepCount = 0;
  private costUsd = 0;
  private maxDepth = 0;
  private maxDurationSeconds = 0;
  /** an evicted run held a maximum: recompute at the next read */
  private maximaStale = false;

  constructor(tenantId: string, nowMs: number) {
    this.tenantId = tenantId;
    this.lastSeenMs = nowMs;
  }

  /** Add a span already recorded in `run` (one of this tenant's runs). */
  record(f: SpanFacts, run: RunWindow, windowSecond: number, lastN: number): void {
    this.stepCount += f.steps;
    this.costUsd += f.costUsd;
    if (run.subAgentDepth > this.maxDepth) this.maxDepth = run.subAgentDepth;
    if (run.durationSeconds > this.maxDurationSeconds) this.maxDurationSeconds = run.durationSeconds;
    if (!f.inWindow) return;
    if (carriesUsage(f)) this.usage.addSpan(f, windowSecond);
    if (f.isStep) {
      if (this.calls === null) this.calls = new CallRing(lastN);
      else this.calls.resize(lastN);
      this.calls.push(f.isErrorCall);
    }
  }

  /** A run resumed from stored totals joins the tenant's cumulative figures. */
  addResumedRun(run: RunWindow): void {
    this.stepCount += run.stepCount;
    this.costUsd += run.costUsd;
    if (run.subAgentDepth > this.maxDepth) this.maxDepth = run.subAgentDepth;
    if (run.durationSeconds > this.maxDurationSeconds) this.maxDurationSeconds = run.durationSeconds;
  }

  /** A run left the store: its cumulative figures leave the tenant's (its recent rates stay). */
  forgetRun(run: RunWindow): void {
    this.runs.delete(run.runId);
    this.runOrder.remove(run.tenantLink);
    this.stepCount -= run.stepCount;
    this.costUsd -= run.costUsd;
    if (this.runs.size === 0) {
      // Exact zeros rather than floating-point residue.
      this.stepCount = 0;
      this.costUsd = 0;
    }
    if (
      (run.subAgentDepth > 0 && run.subAgentDepth >= this.maxDepth) ||
      (run.durationSeconds > 0 && run.durationSeconds >= this.maxDurationSeconds)
    ) {
      this.maximaStale = true;
    }
  }

  metrics(windowSecond: number, settings: ErrorRatioSettings): Record<RunMetric, number> {
    if (this.maximaStale) this.recomputeMaxima();
    return metricRecord(
      this.usage.rates(windowSecond),
      this.calls,
      settings,
      this.stepCount,
      this.maxDepth,
      this.maxDurationSeconds,
      this.costUsd,
    );
  }

  private recomputeMaxima(): void {
    let depth = 0;
    let duration = 0;
    for (const run of this.runs.values()) {
      depth = Math.max(depth, run.subAgentDepth);
      duration = Math.max(duration, run.durationSeconds);
    }
    this.maxDepth = depth;
    this.maxDurationSeconds = duration;
    this.maximaStale = false;
  }
}
