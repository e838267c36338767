// WindowStore: the in-memory rolling metrics, updated on every ingested span (O(1) amortized per
// span, bounded memory), read by the breakers and the API.
//
// Semantics
// ---------
// Steps. A step is a model call (operation chat, generate_content, text_completion, embeddings) or
//   a tool call (execute_tool). toolCallsPerMinute counts execute_tool spans, modelCallsPerMinute
//   model calls, stepCount both. Other spans (invoke_agent, framework spans) are not steps.
// Tokens. inputTokens + outputTokens, attributed at the span's end time. Agent spans (invoke_agent,
//   create_agent) are skipped: their usage is a roll-up of their children's.
// Cost. The price of the span's model (responseModel, its undated family, then requestModel and
//   its family) from `prices()`, else the built-in table, USD per million tokens; a model in neither costs 0 (cost.ts,
//   the same pricing as the persisted span rows). costUsd is cumulative, costPerMinuteUsd the last 60 s.
// Sub-agents. The SDK stamps the root run id on every span, so a sub-agent's usage counts toward
//   its ROOT run. Depth is span.depth when >= 0; otherwise an invoke_agent span's depth is 1 + the
//   depth of its nearest invoke_agent ancestor known in the run (the root agent has 0), resolved
//   when parents arrive after their children (the export order) or before them; agent-tree.ts
//   names the one mixed order it can under-count. subAgentDepth = max seen.
// Error ratio. Over steps: errored steps / steps over the last N steps (ErrorRatioSettings.lastN of
//   the tenant) and over the last 60 s; the larger of the two, where each counts only once it holds
//   at least minCalls steps (0 until then). Provider and model windows apply the same rule to
//   their model calls with `providerErrorRatio`, counting provider failures only (5xx, overloaded,
//   timeouts, connection errors). Errors are classified by normalize/call-outcome.ts, the
//   classifier degradation uses: a 429 (status, error.type or text) never counts.
// Duration. durationSeconds = latest span end - earliest span start of the run.
// Time. Spans are bucketed by their own end time, per second. The window time is
//   W = max(second of now(), newest span end second recorded): "the last 10 s" is the seconds
//   (W-10, W], "the last 60 s" (W-60, W]. Velocities are tokens over the last 10 s / 10 and over
//   the last 60 s / 60; "per minute" figures are sums over the last 60 s.
// Late and out-of-order spans. Any span inside the 60 s window lands in its own second, whatever
//   the arrival order. A span ending at or before W-60 is late: it counts in the cumulative figures
//   (stepCount, costUsd, tokens, duration, depth, tree) but not in rates (velocities, per-minute
//   figures, error ratio windows incl. the last-N ring, latency).
// Future spans. A span ending more than 5 s past now() is clamped to end at now(); within 5 s it
//   keeps its time (and moves W forward).
// Tenants. Rates are the tenant's own rolling counters, updated by the same record() call as the
//   run's, so they equal the sum over its runs (and keep counting the recent traffic of a run
//   evicted early by the maxRuns cap). stepCount and costUsd are sums over the tenant's runs held
//   by the store, subAgentDepth the max, durationSeconds the longest of those runs. errorRatio is
//   over the tenant's own steps (all runs together), by the same rule as a run's.
// Providers and models. latencyP50Ms / latencyP95Ms: duration of model-call spans over the last
//   50-60 s (10 s slices), within ~2 %; callsPerMinute: model calls in the last 60 s. A model is
//   keyed by (provider, responseModel else requestModel).
// Eviction. Idleness is measured on the store clock at record time (not span time). evictIdle()
//   drops runs idle >= runIdleMs, tenants idle >= tenantIdleMs (with any runs left), providers and
//   models idle >= providerIdleMs. Runs have two bounds, and a run holding a decision
//   (holdsDecision: in the service, a breaker not CLOSED or a degradation decision of its own) is
//   never evicted for room. A tenant at maxRunsPerTenant gives up its own least recently used run
//   idle >= runQuietMs (its rolling window is empty). The store at maxRuns takes the least
//   recently used run of the tenant holding the most runs when that is another tenant holding more
//   than the new run's tenant; else the new run's tenant gives up its own as at its bound. A run
//   seen in the current millisecond never gives way, and only a tenant's CAP_SCAN least recently
//   used runs are looked at. With nothing to give way the new run is refused (admitRun says why;
//   record drops its span): the ingest pipeline asks admitRun before it acknowledges the spans,
//   so the flooding tenant is the one refused. Providers and models have caps too. Reads never
//   refresh idleness. onEvict sees each evicted window (runs with their final details and
//   metrics) after it left the store.
// Duplicates. A request delivered again (an exporter retry) never reaches the store twice: the
//   ingest pipeline recognizes it (app/recent-deliveries.ts). A span sent again inside another
//   request is counted again; only the agent tree ignores a repeated span id.
// Memory (measured with --expose-gc, 100k runs over 10k tenants, 5 spans each): a run with traffic
//   is ~1.8 KB (840-byte ring in one ArrayBuffer, counters, bitset call ring, map entry, run id);
//   +~0.4 KB once it has an invoke_agent span (the tree). A tenant is ~2.4 KB (1.7 KB ring).
//   Providers and models are ~10 KB each (latency sketch), capped by maxProviders / maxModels.
//   counts() gives the window counts for a benchmark to divide heap figures by.

import type { AgentSpan } from '../contracts/agent-span.js';
import type { ErrorRatioSettings, ModelPrice } from '../policy/policy-types.js';
import { LruList } from './lru-list.js';
import type { ProviderMetric, RunMetric } from './metric-names.js';
import { ProviderWindow } from './provider-window.js';
import { RunCountRanking } from './run-count-ranking.js';
import { RunWindow, type RunDetails, type RunTotals } from './run-window.js';
import { blankFacts, spanFacts, spanModel } from './span-facts.js';
import { TenantWindow } from './tenant-window.js';
import { secondOf, WINDOW_SECONDS } from './window-time.js';

export type EvictReason = 'idle' | 'cap';

/** Why a new run got no window: its tenant is at its bound, or the store at its cap, and no run could give way. */
export type RunRefusal = 'tenant_runs' | 'runs';

export type EvictionEvent =
  | {
      kind: 'run';
      reason: EvictReason;
      tenantId: string;
      runId: string;
      details: RunDetails;
      metrics: Record<RunMetric, number>;
    }
  | { kind: 'tenant'; reason: EvictReason; tenantId: string }
  | { kind: 'provider'; reason: EvictReason; provider: string }
  | { kind: 'model'; reason: EvictReason; provider: string; model: string };

export interface WindowStoreOptions {
  /** the store clock, epoch ms (injectable for tests); default Date.now */
  now?: () => number;
  /** per-model prices, read on every record, over the built-in table; default none */
  prices?: () => Readonly<Record<string, ModelPrice>>;
  /** the tenant's error-ratio settings, read on every record and read; default DEFAULT_ERROR_RATIO */
  errorRatio?: (tenantId: string) => ErrorRatioSettings;
  /** error-ratio settings of the provider and model windows; default DEFAULT_PROVIDER_ERROR_RATIO */
  providerErrorRatio?: ErrorRatioSettings;
  /** default 15 min */
  runIdleMs?: number;
  /** default 1 h */
  tenantIdleMs?: number;
  /** default 1 h */
  providerIdleMs?: number;
  /** hard cap on runs held across all tenants (see Eviction). Default 100 000 */
  maxRuns?: number;
  /** runs one tenant may hold. Default 10 000 */
  maxRunsPerTenant?: number;
  /** idleness after which a tenant's run may give way to the same tenant's new run. Default 60 s */
  runQuietMs?: number;
  /** default 256 */
  maxProviders?: number;
  /** (provider, model) windows; default 1024 */
  maxModels?: number;
  onEvict?: (event: EvictionEvent) => void;
  /**
   * A run whose state carries a decision (a breaker not CLOSED, say): never evicted for room, so one
   * tenant's new runs cannot push another tenant's halted run out. Idle eviction still applies.
   * Default: none do.
   */
  holdsDecision?: (tenantId: string, runId: string) => boolean;
}

/** Runs of a tenant looked at, least recently used first, for one that may give way to a new run. */
const CAP_SCAN = 256;

export const DEFAULT_ERROR_RATIO: Readonly<ErrorRatioSettings> = Object.freeze({ minCalls: 10, lastN: 50 });
export const DEFAULT_PROVIDER_ERROR_RATIO: Readonly<ErrorRatioSettings> = Object.freeze({
  minCalls: 20,
  lastN: 100,
});

export interface WindowStoreCounts {
  runs: number;
  tenants: number;
  providers: number;
  models: number;
}

const MINUTE = 60_000;

export class WindowStore {
  /** the facts of the span being recorded (one object reused, see spanFacts) */
  readonly #facts = blankFacts();
  private readonly now: () => number;
  private readonly prices: () => Readonly<Record<string, ModelPrice>>;
  private readonly errorRatio: (tenantId: string) => ErrorRatioSettings;
  private readonly providerErrorRatio: ErrorRatioSettings;
  private readonly runIdleMs: number;
  private readonly tenantIdleMs: number;
  private readonly providerIdleMs: number;
  private readonly maxRuns: number;
  private readonly maxRunsPerTenant: number;
  private readonly runQuietMs: number;
  private readonly maxProviders: number;
  private readonly maxModels: number;
  private readonly onEvict: ((event: EvictionEvent) => void) | undefined;
  private readonly holdsDecision: (tenantId: string, runId: string) => boolean;

  private readonly tenantsById = new Map<string, TenantWindow>();
  private readonly tenantLru = new LruList<TenantWindow>();
  private readonly runLru = new LruList<RunWindow>();
  private readonly runRanking = new RunCountRanking<TenantWindow>();
  private readonly providersByName = new Map<string, ProviderWindow>();
  private readonly providerLru = new LruList<ProviderWindow>();
  private readonly modelsByProvider = new Map<string, Map<string, ProviderWindow>>();
  private readonly modelLru = new LruList<ProviderWindow>();
  /** newest span end second recorded (in-window or not) */
  private newestSecond = Number.NEGATIVE_INFINITY;

  constructor(options: WindowStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.prices = options.prices ?? (() => ({}));
    this.errorRatio = options.errorRatio ?? (() => DEFAULT_ERROR_RATIO);
    this.providerErrorRatio = options.providerErrorRatio ?? DEFAULT_PROVIDER_ERROR_RATIO;
    this.runIdleMs = options.runIdleMs ?? 15 * MINUTE;
    this.tenantIdleMs = options.tenantIdleMs ?? 60 * MINUTE;
    this.providerIdleMs = options.providerIdleMs ?? 60 * MINUTE;
    this.maxRuns = Math.max(1, options.maxRuns ?? 100_000);
    this.maxRunsPerTenant = Math.max(1, options.maxRunsPerTenant ?? 10_000);
    this.runQuietMs = options.runQuietMs ?? MINUTE;
    this.maxProviders = Math.max(1, options.maxProviders ?? 256);
    this.maxModels = Math.max(1, options.maxModels ?? 1024);
    this.onEvict = options.onEvict;
    this.holdsDecision = options.holdsDecision ?? (() => false);
  }

  /** The window time W (epoch second) as of now: max(now's second, newest span end second). */
  windowSecond(): number {
    return this.windowSecondAt(this.now());
  }

  /** Records a request's spans as of one reading of the clock. */
  recordAll(spans: readonly AgentSpan[]): void {
    const nowMs = this.now();
    for (let i = 0; i < spans.length; i++) this.record(spans[i]!, nowMs);
  }

  /**
   * Resumes runs from their stored totals after a restart, so a runaway gets no fresh budget:
   * step count, cost, tokens, duration and depth carry on (tenants' sums with them); rolling rates
   * start empty. A run already recorded since the start is left as it is. Returns how many resumed.
   */
  resumeRuns(totals: readonly RunTotals[]): number {
    const nowMs = this.now();
    let resumed = 0;
    for (const t of totals) {
      const tenant = this.tenantFor(t.tenantId, nowMs);
      if (tenant.runs.has(t.runId)) continue;
      const run = this.runFor(tenant, t.runId, nowMs);
      if (typeof run === 'string') continue;
      run.resume(t);
      tenant.addResumedRun(run);
      resumed++;
    }
    return resumed;
  }

  /**
   * Gives the run a window now if it has none and the bounds allow it (see Eviction); returns why
   * not otherwise. The ingest pipeline asks this for every run of a request before acknowledging it.
   */
  admitRun(tenantId: string, runId: string): RunRefusal | undefined {
    const nowMs = this.now();
    const run = this.runFor(this.tenantFor(tenantId, nowMs), runId, nowMs);
    return typeof run === 'string' ? run : undefined;
  }

  /**
   * Marks a run with a window as used now, so admitting a request's new runs cannot take room
   * from its runs already held (a run seen this millisecond never gives way). False if it has none.
   */
  touchRun(tenantId: string, runId: string): boolean {
    const tenant = this.tenantsById.get(tenantId);
    const run = tenant?.runs.get(runId);
    if (tenant === undefined || run === undefined) return false;
    const nowMs = this.now();
    this.tenantLru.touch(tenant, nowMs);
    this.runLru.touch(run, nowMs);
    tenant.runOrder.touch(run.tenantLink, nowMs);
    return true;
  }

  /** Records a span; one of a new run the bounds refuse (admitRun) is dropped. */
  record(span: AgentSpan, nowMs = this.now()): void {
    const tenant = this.tenantFor(span.tenantId, nowMs);
    const run = this.runFor(tenant, span.runId, nowMs);
    if (typeof run === 'string') return;
    const f = spanFacts(span, nowMs, this.prices(), this.#facts);
    if (f.endSec > this.newestSecond) this.newestSecond = f.endSec;
    const w = this.windowSecondAt(nowMs);
    f.inWindow = f.endSec > w - WINDOW_SECONDS;

    const settings = this.errorRatio(span.tenantId);
    run.record(f, span.spanId, span.parentSpanId, w, settings.lastN);
    tenant.record(f, run, w, settings.lastN);

    if (f.kind === 'model' && span.provider !== '') {
      this.providerFor(span.provider, nowMs).record(f, w);
      const model = spanModel(span);
      if (model !== '') this.modelFor(span.provider, model, nowMs).record(f, w);
    }
  }

  runMetrics(tenantId: string, runId: string): Record<RunMetric, number> | undefined {
    const run = this.tenantsById.get(tenantId)?.runs.get(runId);
    return run?.metrics(this.windowSecond(), this.errorRatio(tenantId));
  }

  tenantMetrics(tenantId: string): Record<RunMetric, number> | undefined {
    return this.tenantsById.get(tenantId)?.metrics(this.windowSecond(), this.errorRatio(tenantId));
  }

  providerMetrics(provider: string): Record<ProviderMetric, number> | undefined {
    return this.providersByName.get(provider)?.metrics(this.windowSecond(), this.providerErrorRatio);
  }

  modelMetrics(provider: string, model: string): Record<ProviderMetric, number> | undefined {
    return this.modelsByProvider
      .get(provider)
      ?.get(model)
      ?.metrics(this.windowSecond(), this.providerErrorRatio);
  }

  runDetails(tenantId: string, runId: string): RunDetails | undefined {
    return this.tenantsById.get(tenantId)?.runs.get(runId)?.details();
  }

  /** Run ids the store holds for the tenant (not yet evicted). */
  activeRuns(tenantId: string): string[] {
    const tenant = this.tenantsById.get(tenantId);
    return tenant === undefined ? [] : [...tenant.runs.keys()];
  }

  tenants(): Iterable<string> {
    return this.tenantsById.keys();
  }

  providers(): Iterable<string> {
    return this.providersByName.keys();
  }

  /** (provider, model) pairs held. */
  *models(): Iterable<{ provider: string; model: string }> {
    for (const [provider, models] of this.modelsByProvider) {
      for (const model of models.keys()) yield { provider, model };
    }
  }

  counts(): WindowStoreCounts {
    return {
      runs: this.runLru.size,
      tenants: this.tenantsById.size,
      providers: this.providersByName.size,
      models: this.modelLru.size,
    };
  }

  /** Drop idle windows (call periodically). Returns how many windows of any kind were evicted. */
  evictIdle(): number {
    const nowMs = this.now();
    let evicted = 0;
    for (let r = this.runLru.oldest(); r !== null && nowMs - r.lastSeenMs >= this.runIdleMs; r = this.runLru.oldest()) {
      this.evictRun(r, 'idle');
      evicted++;
    }
    for (
      let t = this.tenantLru.oldest();
      t !== null && nowMs - t.lastSeenMs >= this.tenantIdleMs;
      t = this.tenantLru.oldest()
    ) {
      evicted += this.evictTenant(t, 'idle');
    }
    for (
      let m = this.modelLru.oldest();
      m !== null && nowMs - m.lastSeenMs >= this.providerIdleMs;
      m = this.modelLru.oldest()
    ) {
      this.evictModel(m, 'idle');
      evicted++;
    }
    for (
      let p = this.providerLru.oldest();
      p !== null && nowMs - p.lastSeenMs >= this.providerIdleMs;
      p = this.providerLru.oldest()
    ) {
      this.evictProvider(p, 'idle');
      evicted++;
    }
    return evicted;
  }

  private windowSecondAt(nowMs: number): number {
    return Math.max(secondOf(nowMs), this.newestSecond);
  }

  private tenantFor(tenantId: string, nowMs: number): TenantWindow {
    let tenant = this.tenantsById.get(tenantId);
    if (tenant === undefined) {
      tenant = new TenantWindow(tenantId, nowMs);
      this.tenantsById.set(tenantId, tenant);
    }
    this.tenantLru.touch(tenant, nowMs);
    return tenant;
  }

  private runFor(tenant: TenantWindow, runId: string, nowMs: number): RunWindow | RunRefusal {
    let run = tenant.runs.get(runId);
    if (run === undefined) {
      const refusal = this.makeRoom(tenant, nowMs);
      if (refusal !== undefined) return refusal;
      run = new RunWindow(tenant.tenantId, runId, nowMs);
      tenant.runs.set(runId, run);
      this.runRanking.moved(tenant, tenant.runs.size - 1, tenant.runs.size);
    }
    this.runLru.touch(run, nowMs);
    tenant.runOrder.touch(run.tenantLink, nowMs);
    return run;
  }

  /** Makes room for one more run of `tenant` within both bounds, or says why it cannot. */
  private makeRoom(tenant: TenantWindow, nowMs: number): RunRefusal | undefined {
    if (tenant.runs.size >= this.maxRunsPerTenant) {
      const own = this.victimOf(tenant, nowMs - this.runQuietMs);
      if (own === null) return 'tenant_runs';
      this.evictRun(own, 'cap');
    }
    while (this.runLru.size >= this.maxRuns) {
      const largest = this.runRanking.largest();
      // Another tenant holding more runs gives way first; a tenant as large as any gives up its own.
      const fromLargest = largest !== undefined && largest !== tenant && largest.runs.size > tenant.runs.size ? this.victimOf(largest, nowMs - 1) : null;
      const victim = fromLargest ?? this.victimOf(tenant, nowMs - this.runQuietMs);
      if (victim === null) return 'runs';
      this.evictRun(victim, 'cap');
    }
    return undefined;
  }

  /** The tenant's least recently used run last seen at or before `seenBy` and holding no decision, among its CAP_SCAN oldest. */
  private victimOf(tenant: TenantWindow, seenBy: number): RunWindow | null {
    let link = tenant.runOrder.oldest();
    for (let i = 0; link !== null && i < CAP_SCAN && link.lastSeenMs <= seenBy; i++, link = link.lruNext) {
      if (!this.holdsDecision(tenant.tenantId, link.run.runId)) return link.run;
    }
    return null;
  }

  private providerFor(provider: string, nowMs: number): ProviderWindow {
    let window = this.providersByName.get(provider);
    if (window === undefined) {
      while (this.providerLru.size >= this.maxProviders) {
        const oldest = this.providerLru.oldest();
        if (oldest === null) break;
        this.evictProvider(oldest, 'cap');
      }
      window = new ProviderWindow(provider, '', nowMs, this.providerErrorRatio.lastN);
      this.providersByName.set(provider, window);
    }
    this.providerLru.touch(window, nowMs);
    return window;
  }

  private modelFor(provider: string, model: string, nowMs: number): ProviderWindow {
    let models = this.modelsByProvider.get(provider);
    let window = models?.get(model);
    if (window === undefined) {
      while (this.modelLru.size >= this.maxModels) {
        const oldest = this.modelLru.oldest();
        if (oldest === null) break;
        this.evictModel(oldest, 'cap');
      }
      window = new ProviderWindow(provider, model, nowMs, this.providerErrorRatio.lastN);
      models = this.modelsByProvider.get(provider); // the eviction may have dropped the map
      if (models === undefined) {
        models = new Map();
        this.modelsByProvider.set(provider, models);
      }
      models.set(model, window);
    }
    this.modelLru.touch(window, nowMs);
    return window;
  }

  private evictRun(run: RunWindow, reason: EvictReason): void {
    this.runLru.remove(run);
    const tenant = this.tenantsById.get(run.tenantId);
    if (tenant !== undefined) {
      tenant.forgetRun(run);
      this.runRanking.moved(tenant, tenant.runs.size + 1, tenant.runs.size);
    }
    this.onEvict?.({
      kind: 'run',
      reason,
      tenantId: run.tenantId,
      runId: run.runId,
      details: run.details(),
      metrics: run.metrics(this.windowSecond(), this.errorRatio(run.tenantId)),
    });
  }

  /** Evicts the tenant with its remaining runs; returns the number of windows evicted. */
  private evictTenant(tenant: TenantWindow, reason: EvictReason): number {
    let evicted = 1;
    for (const run of [...tenant.runs.values()]) {
      this.evictRun(run, reason);
      evicted++;
    }
    this.tenantLru.remove(tenant);
    this.tenantsById.delete(tenant.tenantId);
    this.onEvict?.({ kind: 'tenant', reason, tenantId: tenant.tenantId });
    return evicted;
  }

  private evictProvider(window: ProviderWindow, reason: EvictReason): void {
    this.providerLru.remove(window);
    this.providersByName.delete(window.provider);
    this.onEvict?.({ kind: 'provider', reason, provider: window.provider });
  }

  private evictModel(window: ProviderWindow, reason: EvictReason): void {
    this.modelLru.remove(window);
    const models = this.modelsByProvider.get(window.provider);
    models?.delete(window.model);
    if (models !== undefined && models.size === 0) this.modelsByProvider.delete(window.provider);
    this.onEvict?.({ kind: 'model', reason, provider: window.provider, model: window.model });
  }
}
