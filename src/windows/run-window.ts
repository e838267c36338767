// The rolling and cumulative state of one agent run. Kept compact (under 2 KB with traffic):
// scalar counters, an 840-byte usage ring allocated on the first step, a bitset call ring, and a
// sub-agent tree allocated on the first invoke_agent span.

import type { ErrorRatioSettings } from '../policy/policy-types.js';
import { AgentTree, type AgentEdge } from './agent-tree.js';
import { CallRing, combinedErrorRatio } from './call-ring.js';
import type { LruNode } from './lru-list.js';
import type { RunMetric } from './metric-names.js';
import type { SpanFacts } from './span-facts.js';
import { carriesUsage, NO_USAGE, UsageRing, type UsageRates } from './usage-ring.js';
import { SHORT_WINDOW_SECONDS, WINDOW_SECONDS } from './window-time.js';

export interface RunDetails {
  tenantId: string;
  runId: string;
  /** store clock (epoch ms) when the run's first span was recorded */
  firstSeenMs: number;
  /** store clock (epoch ms) when its latest span was recorded */
  lastSeenMs: number;
  /** earliest span start (epoch ms) */
  startedAtMs: number;
  /** latest span end (epoch ms) */
  endedAtMs: number;
  spanCount: number;
  stepCount: number;
  modelCalls: number;
  toolCalls: number;
  errorCalls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  subAgentDepth: number;
  durationSeconds: number;
  /** invoke_agent span -> nearest invoke_agent ancestor, at most MAX_AGENTS per run */
  agentEdges: AgentEdge[];
  /** true when the run had more agent spans than the edges hold */
  agentEdgesTruncated: boolean;
}

/** A run's cumulative figures as storage holds them, to resume it after a restart. */
export type RunTotals = Pick<
  RunDetails,
  'tenantId' | 'runId' | 'spanCount' | 'stepCount' | 'modelCalls' | 'toolCalls' | 'errorCalls' | 'inputTokens' | 'outputTokens' | 'costUsd' | 'startedAtMs' | 'endedAtMs'
> & {
  /** deepest agent.depth carried by its spans (-1: none) */
  maxDepth: number;
};

/**
 * The metric record of a run or a tenant: rates from a usage snapshot plus the cumulative figures.
 * Built as one literal on purpose: spreading a partial record into it was 10× slower in V8.
 */
export function metricRecord(
  rates: UsageRates,
  ring: CallRing | null,
  settings: ErrorRatioSettings,
  stepCount: number,
  subAgentDepth: number,
  durationSeconds: number,
  costUsd: number,
): Record<RunMetric, number> {
  return {
    tokenVelocity10s: rates.tokens10s / SHORT_WINDOW_SECONDS,
    tokenVelocity60s: rates.tokens60s / WINDOW_SECONDS,
    toolCallsPerMinute: rates.toolCalls60s,
    modelCallsPerMinute: rates.modelCalls60s,
    errorRatio: combinedErrorRatio(
      ring,
      rates.toolCalls60s + rates.modelCalls60s,
      rates.errors60s,
      settings.minCalls,
    ),
    stepCount,
    subAgentDepth,
    durationSeconds,
    costPerMinuteUsd: rates.cost60s,
    costUsd,
  };
}

/** A run's place in its tenant's own least-recently-used order (the run's own links are the store-wide order). */
export class TenantRunLink implements LruNode<TenantRunLink> {
  lruPrev: TenantRunLink | null = null;
  lruNext: TenantRunLink | null = null;
  lastSeenMs: number;

  constructor(readonly run: RunWindow) {
    this.lastSeenMs = run.lastSeenMs;
  }
}

export class RunWindow implements LruNode<RunWindow> {
  lruPrev: RunWindow | null = null;
  lruNext: RunWindow | null = null;
  lastSeenMs: number;
  readonly tenantLink: TenantRunLink;
  readonly firstSeenMs: number;
  readonly tenantId: string;
  readonly runId: string;

  startMs = Number.POSITIVE_INFINITY;
  endMs = Number.NEGATIVE_INFINITY;
  spanCount = 0;
  stepCount = 0;
  modelCalls = 0;
  toolCalls = 0;
  errorCalls = 0;
  inputTokens = 0;
  outputTokens = 0;
  costUsd = 0;
  /** deepest agent.depth carried by any span */
  private explicitDepth = 0;
  private usage: UsageRing | null = null;
  private calls: CallRing | null = null;
  private tree: AgentTree | null = null;

  constructor(tenantId: string, runId: string, nowMs: number) {
    this.tenantId = tenantId;
    this.runId = runId;
    this.firstSeenMs = nowMs;
    this.lastSeenMs = nowMs;
    this.tenantLink = new TenantRunLink(this);
  }

  /** Starts from stored totals (a restart): cumulative figures carry on, rates start empty. */
  resume(totals: RunTotals): void {
    this.spanCount = totals.spanCount;
    this.stepCount = totals.stepCount;
    this.modelCalls = totals.modelCalls;
    this.toolCalls = totals.toolCalls;
    this.errorCalls = totals.errorCalls;
    this.inputTokens = totals.inputTokens;
    this.outputTokens = totals.outputTokens;
    this.costUsd = totals.costUsd;
    this.startMs = totals.startedAtMs;
    this.endMs = totals.endedAtMs;
    this.explicitDepth = Math.max(0, totals.maxDepth);
  }

  get durationSeconds(): number {
    return this.endMs >= this.startMs ? (this.endMs - this.startMs) / 1000 : 0;
  }

  get subAgentDepth(): number {
    return Math.max(this.explicitDepth, this.tree?.maxDepth ?? 0);
  }

  /**
   * @param windowSecond the store's window time (epoch second)
   * @param lastN the tenant's count-based error window
   */
  record(f: SpanFacts, spanId: string, parentSpanId: string, windowSecond: number, lastN: number): void {
    this.spanCount++;
    if (f.startMs < this.startMs) this.startMs = f.startMs;
    if (f.endMs > this.endMs) this.endMs = f.endMs;
    if (f.depth > this.explicitDepth) this.explicitDepth = f.depth;
    this.inputTokens += f.inputTokens;
    this.outputTokens += f.outputTokens;
    this.costUsd += f.costUsd;
    this.stepCount += f.steps;
    this.toolCalls += f.toolCalls;
    if (f.isStep) {
      if (f.kind === 'model') this.modelCalls++;
      if (f.isErrorCall) this.errorCalls++;
    }

    if (f.kind === 'agent') {
      this.tree ??= new AgentTree();
      this.tree.addAgent(spanId, parentSpanId, f.depth);
    } else if (this.tree !== null) {
      this.tree.addOther(spanId, parentSpanId, f.kind === 'model');
    }

    if (!f.inWindow) return; // late: cumulative counters only
    if (carriesUsage(f)) {
      this.usage ??= new UsageRing(true);
      this.usage.addSpan(f, windowSecond);
    }
    if (f.isStep) {
      if (this.calls === null) this.calls = new CallRing(lastN);
      else this.calls.resize(lastN); // no-op unless the policy changed N
      this.calls.push(f.isErrorCall);
    }
  }

  metrics(windowSecond: number, settings: ErrorRatioSettings): Record<RunMetric, number> {
    return metricRecord(
      this.usage?.rates(windowSecond) ?? NO_USAGE,
      this.calls,
      settings,
      this.stepCount,
      this.subAgentDepth,
      this.durationSeconds,
      this.costUsd,
    );
  }

  details(): RunDetails {
    return {
      tenantId: this.tenantId,
      runId: this.runId,
      firstSeenMs: this.firstSeenMs,
      lastSeenMs: this.lastSeenMs,
      startedAtMs: this.startMs,
      endedAtMs: this.endMs,
      spanCount: this.spanCount,
      stepCount: this.stepCount,
      modelCalls: this.modelCalls,
      toolCalls: this.toolCalls,
      errorCalls: this.errorCalls,
      inputTokens: this.inputTokens,
      outputTokens: this.outputTokens,
      costUsd: this.costUsd,
      subAgentDepth: this.subAgentDepth,
      durationSeconds: this.durationSeconds,
      agentEdges: this.tree?.edges() ?? [],
      agentEdgesTruncated: this.tree?.truncated ?? false,
    };
  }
}
