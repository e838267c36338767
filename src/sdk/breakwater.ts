// The agent-side library: OpenTelemetry setup toward Breakwater, run scopes, GenAI span helpers, and
// checkpoint(), which applies Breakwater's latest decision at a step boundary without any I/O.

import { randomUUID } from 'node:crypto';
import { context, ProxyTracerProvider, SpanKind, trace, type Attributes, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { BasicTracerProvider, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { allowDecision, type Action, type Decision } from '../contracts/decision.js';
import { ATTR } from './attributes.js';
import { DecisionCache, mostSevereEntry, retryAt, type CachedDecision } from './decision-cache.js';
import { DecisionClient, type BackoffOptions } from './decision-client.js';
import { apiToken, graphqlBases, otlpTracesUrl } from './endpoints.js';
import { BreakwaterHaltError, BreakwaterUnavailableError } from './errors.js';
import { LocalDecisionProcessor } from './local-decision-processor.js';
import { applicableDecisions, LocalJudge } from './local-judge.js';
import { consoleLogger, type SdkLogger } from './logger.js';
import { fetchLocalPolicyFromAny } from './policy-client.js';
import { activeScope, ensureContextManager, RUN_SCOPE_KEY, type RunScope } from './run-scope.js';
import { BreakwaterSpanProcessor } from './span-processor.js';
import { StepExportProcessor, type ExportStats } from './step-export-processor.js';
import { modelCallSpan, recordError, toolCallSpan, type ModelCallRequest, type ModelUsage, type ToolCallOptions } from './spans.js';

const TRACER_NAME = 'breakwater-sdk';
const TRACER_VERSION = '0.1.0';

export type FailMode = 'open' | 'closed';

export interface BreakwaterOptions {
  tenantId: string;
  /**
   * Breakwater's API, e.g. http://127.0.0.1:4000 (a trailing /graphql is accepted); several (an
   * array, or a comma-separated list) for failover: after a failed connection the subscription
   * moves to the next. Default BREAKWATER_GRAPHQL_URL.
   */
  graphqlUrl?: string | readonly string[];
  /** API token for the decisions subscription (Authorization: Bearer), when the API requires one; default BREAKWATER_API_TOKEN */
  apiToken?: string;
  /**
   * What checkpoint() does once the decision subscription has been down longer than `graceMs`:
   * 'open' (default) keeps going on the last known decisions, logging once that they are stale;
   * 'closed' halts every checkpoint with BreakwaterUnavailableError until Breakwater is back.
   */
  failMode?: FailMode;
  /** how long the subscription may be down before decisions count as stale; default 10 s */
  graceMs?: number;
  /** awaited before checkpoint() throws BreakwaterHaltError: save state here */
  onHalt?: (decision: Decision, error: BreakwaterHaltError) => void | Promise<void>;
  /** called once per warning decision (per run and sequence) */
  onWarn?: (decision: Decision) => void;
  logger?: SdkLogger;
  /** how long start()/attach() wait for the subscription's first answer and the run thresholds of local decisions; default 3 s (then carry on) */
  connectTimeoutMs?: number;
  /** longest a THROTTLE (or DEGRADE with a retry-after) makes checkpoint() wait; default 60 s */
  maxThrottleWaitMs?: number;
  /** reconnection backoff of the decision subscription */
  backoff?: BackoffOptions;
  /** gen_ai.agent.name of runs that do not name their agent; default serviceName or 'agent' */
  agentName?: string;
  /**
   * true (default): checkpoint() also halts a run at once when the spans this instance exported
   * for it cross a run threshold of the tenant's policy that the SDK can judge exactly from them
   * (stepCount, subAgentDepth, durationSeconds), by the server's own rules, without waiting for
   * Breakwater's decision; such a decision has `source: 'local'`. The thresholds are read from
   * Breakwater (with apiToken) at start and every 30 s; without them nothing is decided locally.
   * Breakwater's decision for the run wins where it differs (docs/sdk.md, "Local decisions").
   * Needs this instance to export (otlpUrl). false: only Breakwater's decisions apply.
   */
  localDecisions?: boolean;
}

export interface ExportOptions {
  /**
   * Breakwater's OTLP/HTTP receiver, e.g. http://127.0.0.1:4318 (a trailing /v1/traces is accepted).
   * Breakwater.start defaults to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is), else
   * OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/traces; attach() exports only when it is given.
   */
  otlpUrl?: string;
  /** sent as Authorization: Bearer on every export, when Breakwater has ingest keys; Breakwater.start defaults to BREAKWATER_INGEST_KEY */
  ingestKey?: string;
  /**
   * The longest a finished span outside any run waits before it leaves (batched with others); a
   * run's spans leave as soon as they end. Default 200 ms.
   */
  scheduledDelayMillis?: number;
  /** exports toward Breakwater waiting for their answer at once; what ends meanwhile is batched. Default 4. */
  maxConcurrentExports?: number;
}

export interface StartOptions extends BreakwaterOptions, ExportOptions {
  /** service.name on the resource */
  serviceName?: string;
  resourceAttributes?: Attributes;
  /**
   * true (default): start @opentelemetry/sdk-node's NodeSDK and register it globally, so every
   * instrumentation's spans go to Breakwater. One such instance per process.
   * false: a tracer provider of this instance only (several tenants in one process); spans from
   * this instance's helpers go to Breakwater, spans from instrumentations follow the global setup.
   */
  global?: boolean;
  /** passed to NodeSDK when global */
  instrumentations?: NodeSDKConfiguration['instrumentations'];
}

export interface AttachOptions extends BreakwaterOptions, Partial<ExportOptions> {
  /**
   * The application's provider; default the global one. Breakwater's span processor is added to it
   * (1.x providers' addSpanProcessor, or 2.x providers' processor list).
   */
  tracerProvider?: TracerProvider;
  /**
   * false: add nothing; the application puts `bw.spanProcessor` in its own provider's
   * spanProcessors (e.g. `new NodeSDK({ spanProcessors: [..., bw.spanProcessor] })`).
   */
  register?: boolean;
}

export interface RunOptions {
  /** default: a random UUID */
  runId?: string;
  /** gen_ai.agent.name of the run's root agent */
  agentName?: string;
  conversationId?: string;
  attributes?: Attributes;
}

export interface SubAgentOptions {
  agentId?: string;
  attributes?: Attributes;
}

export interface RunHandle {
  tenantId: string;
  /** the root run id (the same in every sub-agent) */
  runId: string;
  /** 0 for the root agent, +1 per sub-agent level */
  depth: number;
  agentName: string;
  /** the invoke_agent span of this agent */
  span: Span;
}

export interface CheckpointOptions {
  /** default: the run of the active run scope; none: the tenant-wide decision only */
  runId?: string;
  /** the model to use when no decision names one (returned as `model`) */
  model?: string;
}

export interface CheckpointResult {
  /** what was applied: ALLOW, WARN, THROTTLE (already waited) or DEGRADE; HALT throws instead */
  action: Action;
  /** the governing decision (a synthetic ALLOW when Breakwater has said nothing) */
  decision: Decision;
  /** the model to use: the decision's fallback model when degraded, else `options.model` */
  model: string | undefined;
  degraded: boolean;
  /** ms checkpoint() waited because of a retry-after */
  waitedMs: number;
  /** true when the decision subscription is down longer than graceMs */
  stale: boolean;
}

export interface BreakwaterStatus {
  /** connecting: not (yet / any more) connected, within the grace period; stale: past it */
  state: 'connecting' | 'connected' | 'stale' | 'closed';
  connected: boolean;
  stale: boolean;
  /** when the current state began (connected since, or down since) */
  since: Date;
  failMode: FailMode;
  /** reconnection attempts so far (each failed or ended subscription schedules one) */
  reconnects: number;
  lastError?: string;
  /** run decisions held in the local cache */
  cachedRuns: number;
  /** true when the SDK holds the tenant's run thresholds and decides crossings of them locally */
  localDecisions: boolean;
  /** what became of the spans sent toward Breakwater (absent when this instance exports nothing) */
  exports?: ExportStats;
}

interface Internals {
  options: BreakwaterOptions;
  /** GraphQL base URLs in failover order */
  graphqlBases: string[];
  spanProcessor: SpanProcessor;
  exporting: StepExportProcessor | undefined;
  local: LocalDecisionProcessor | undefined;
  tracer: () => Tracer;
  shutdown: () => Promise<void>;
  owner: object;
  agentName: string;
}

/** How often the run thresholds for local decisions are read again. */
const POLICY_REFRESH_MS = 30_000;

/** The one process-wide NodeSDK instance, when an instance started with global: true. */
let globalInstance: Breakwater | undefined;

export class Breakwater {
  readonly tenantId: string;
  /** the processor that stamps run identity and forwards spans to Breakwater */
  readonly spanProcessor: SpanProcessor;

  readonly #o: BreakwaterOptions;
  readonly #apiToken: string | undefined;
  /** the GraphQL endpoints in failover order */
  readonly #graphqlEndpoints: string[];
  readonly #owner: object;
  readonly #exporting: StepExportProcessor | undefined;
  readonly #tracer: () => Tracer;
  readonly #shutdownTelemetry: () => Promise<void>;
  readonly #agentName: string;
  readonly #failMode: FailMode;
  readonly #graceMs: number;
  readonly #maxWaitMs: number;
  readonly #logger: SdkLogger;
  readonly #cache = new DecisionCache();
  readonly #judge: LocalJudge | undefined;
  #policyTimer: NodeJS.Timeout | undefined;
  #policyError: string | undefined;
  readonly #client: DecisionClient;
  readonly #listeners = new Set<(decision: Decision) => void>();
  readonly #warned = new Set<string>();
  readonly #stop = new AbortController();
  #downSince: number | undefined = Date.now();
  #connectedSince = 0;
  #staleLogged = false;
  #staleTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #closedAt: number | undefined;
  #shutdown: Promise<void> | undefined;

  private constructor(internals: Internals) {
    const o = internals.options;
    if (typeof o.tenantId !== 'string' || o.tenantId === '') throw new TypeError('Breakwater: tenantId is required');
    this.tenantId = o.tenantId;
    this.spanProcessor = internals.spanProcessor;
    this.#o = o;
    this.#owner = internals.owner;
    this.#exporting = internals.exporting;
    this.#tracer = internals.tracer;
    this.#shutdownTelemetry = internals.shutdown;
    this.#agentName = internals.agentName;
    this.#failMode = o.failMode ?? 'open';
    if (this.#failMode !== 'open' && this.#failMode !== 'closed') throw new TypeError(`Breakwater: failMode must be 'open' or 'closed'`);
    this.#graceMs = Math.max(0, o.graceMs ?? 10_000);
    this.#maxWaitMs = Math.max(0, o.maxThrottleWaitMs ?? 60_000);
    this.#logger = o.logger ?? consoleLogger;
    this.#judge = internals.local?.judge;
    if (internals.local) internals.local.onDecision = (decision) => this.#tell(decision);
    this.#apiToken = apiToken(o.apiToken, process.env);
    this.#graphqlEndpoints = internals.graphqlBases.map((base) => `${base}/graphql`);
    this.#client = new DecisionClient({
      endpoints: this.#graphqlEndpoints.map((endpoint) => `${endpoint}/stream`),
      tenantId: o.tenantId,
      ...(this.#apiToken ? { token: this.#apiToken } : {}),
      ...(o.backoff ? { backoff: o.backoff } : {}),
      logger: this.#logger,
      onDecision: (decision) => this.#onDecision(decision),
      onConnected: () => this.#onConnected(),
      onDisconnected: () => this.#onDisconnected(),
    });
  }

  /**
   * Sets up OpenTelemetry toward Breakwater (NodeSDK, OTLP protobuf exporter sending a run's spans
   * as they end, tenant.id on the resource, the ingest key as bearer token) and subscribes to the tenant's
   * decisions. Waits up to connectTimeoutMs for the first decisions, then carries on either way.
   */
  static async start(options: StartOptions): Promise<Breakwater> {
    const global = options.global ?? true;
    if (global && globalInstance !== undefined) {
      throw new Error(
        `Breakwater: the global OpenTelemetry SDK is already started for tenant ${globalInstance.tenantId}; pass global: false for more tenants in one process`,
      );
    }
    const graphqlUrls = graphqlBases(options.graphqlUrl, process.env);
    const tracesUrl = otlpTracesUrl(options.otlpUrl, process.env);
    if (tracesUrl === undefined) throw new TypeError('Breakwater: otlpUrl is required (the option, or OTEL_EXPORTER_OTLP_ENDPOINT)');
    const ingestKey = options.ingestKey ?? process.env.BREAKWATER_INGEST_KEY;
    const owner = {};
    const serviceName = options.serviceName ?? 'agent';
    const resource = resourceFromAttributes({
      ...options.resourceAttributes,
      'service.name': serviceName,
      [ATTR.tenantId]: options.tenantId,
    });
    const logger = options.logger ?? consoleLogger;
    const exporting = exportingProcessor({ ...options, ingestKey }, tracesUrl, logger, (spans) => local?.accepted(spans));
    const local = localDecisionProcessor(options, exporting, logger);
    const spanProcessor = new BreakwaterSpanProcessor({ owner, next: local ?? exporting, forward: 'all' });
    let tracer: () => Tracer;
    let shutdown: () => Promise<void>;
    if (global) {
      const sdk = new NodeSDK({
        resource,
        serviceName,
        spanProcessors: [spanProcessor],
        instrumentations: options.instrumentations ?? [],
        // Traces only: no metric or log exporters toward endpoints nobody configured.
        metricReaders: [],
        logRecordProcessors: [],
      });
      sdk.start();
      const own = (sdk as unknown as { _tracerProvider?: TracerProvider })._tracerProvider;
      const registered = globalDelegate();
      if (own !== undefined && registered !== own) {
        logger.warn('another TracerProvider was registered globally first: only spans made through this instance reach Breakwater; use Breakwater.attach() to join it', {
          tenantId: options.tenantId,
        });
      }
      const provider = own ?? trace.getTracerProvider();
      const cached = provider.getTracer(TRACER_NAME, TRACER_VERSION);
      tracer = () => cached;
      shutdown = () => sdk.shutdown();
    } else {
      ensureContextManager();
      const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
      const cached = provider.getTracer(TRACER_NAME, TRACER_VERSION);
      tracer = () => cached;
      shutdown = () => provider.shutdown();
    }
    const bw = new Breakwater({ options, graphqlBases: graphqlUrls, spanProcessor, exporting, local, tracer, shutdown, owner, agentName: options.agentName ?? serviceName });
    if (global) globalInstance = bw;
    await bw.#connect();
    return bw;
  }

  /**
   * Joins the application's existing OpenTelemetry setup instead of replacing it: adds Breakwater's
   * span processor (run identity stamping; with otlpUrl, an exporter of this instance's run spans
   * toward Breakwater) to the application's provider, and subscribes to the tenant's decisions.
   */
  static async attach(options: AttachOptions): Promise<Breakwater> {
    const graphqlUrls = graphqlBases(options.graphqlUrl, process.env);
    ensureContextManager();
    const owner = {};
    const logger = options.logger ?? consoleLogger;
    // The application's own OTEL_EXPORTER_OTLP_* point at its collector, not at Breakwater: only the option counts here.
    const tracesUrl = otlpTracesUrl(options.otlpUrl, {});
    const exporting = tracesUrl === undefined ? undefined : exportingProcessor(options, tracesUrl, logger, (spans) => local?.accepted(spans));
    const local = exporting === undefined ? undefined : localDecisionProcessor(options, exporting, logger);
    const next = local ?? exporting;
    const spanProcessor = new BreakwaterSpanProcessor({ owner, ...(next ? { next } : {}), forward: 'runs' });
    let detach = () => {};
    if (options.register ?? true) {
      const added = addSpanProcessor(options.tracerProvider ?? trace.getTracerProvider(), spanProcessor);
      if (typeof added === 'string') throw new Error(`Breakwater.attach: ${added}`);
      detach = added;
    }
    const tracer = () => (options.tracerProvider ?? trace.getTracerProvider()).getTracer(TRACER_NAME, TRACER_VERSION);
    const shutdown = async () => {
      detach();
      await spanProcessor.shutdown();
    };
    const bw = new Breakwater({ options, graphqlBases: graphqlUrls, spanProcessor, exporting, local, tracer, shutdown, owner, agentName: options.agentName ?? 'agent' });
    await bw.#connect();
    return bw;
  }

  async #connect(): Promise<void> {
    this.#armStaleTimer();
    this.#client.start();
    const timeoutMs = Math.max(0, this.#o.connectTimeoutMs ?? 3_000);
    const [connected] = await Promise.all([this.#client.waitConnected(timeoutMs), this.#startPolicyRefresh(timeoutMs)]);
    if (!connected && this.#closedAt === undefined) {
      this.#logger.warn(`not connected to Breakwater yet; carrying on (failMode ${this.#failMode}) and retrying in the background`, {
        tenantId: this.tenantId,
        reason: this.#client.lastError,
      });
    }
  }

  /** Reads the run thresholds now (waiting up to `timeoutMs`) and every POLICY_REFRESH_MS after. */
  async #startPolicyRefresh(timeoutMs: number): Promise<void> {
    if (this.#judge === undefined) return;
    this.#policyTimer = setInterval(() => void this.#refreshPolicy(), POLICY_REFRESH_MS);
    this.#policyTimer.unref();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#refreshPolicy(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** The thresholds as Breakwater holds them; when they cannot be read, none (no local decisions). */
  async #refreshPolicy(): Promise<void> {
    const judge = this.#judge;
    if (judge === undefined || this.#closedAt !== undefined) return;
    try {
      // The subscription's endpoint first (the one that answered last, or the next to try), then the others.
      const current = this.#client.endpoint.replace(/\/stream$/, '');
      const policy = await fetchLocalPolicyFromAny([current, ...this.#graphqlEndpoints.filter((e) => e !== current)], {
        tenantId: this.tenantId,
        ...(this.#apiToken ? { token: this.#apiToken } : {}),
      });
      judge.setPolicy(policy);
      if (this.#policyError !== undefined) this.#logger.info('local decisions resumed: the run thresholds were read again', { tenantId: this.tenantId });
      this.#policyError = undefined;
    } catch (err) {
      judge.setPolicy(undefined);
      const reason = err instanceof Error ? err.message : String(err);
      if (reason !== this.#policyError) this.#logger.warn('no local decisions: the run thresholds could not be read; Breakwater still decides', { tenantId: this.tenantId, reason });
      this.#policyError = reason;
    }
  }

  // ---- run scopes -------------------------------------------------------------------------------

  /**
   * Runs `fn` as one agent run: everything inside, across awaits, Promise.all and timers, belongs to
   * the run, and every span started inside (by any instrumentation) carries tenant.id, agent.run.id
   * and agent.depth. The run is an invoke_agent span named after its agent.
   */
  run<T>(fn: (run: RunHandle) => T | Promise<T>): Promise<T>;
  run<T>(runIdOrOptions: string | RunOptions | undefined, fn: (run: RunHandle) => T | Promise<T>): Promise<T>;
  run<T>(a: string | RunOptions | undefined | ((run: RunHandle) => T | Promise<T>), b?: (run: RunHandle) => T | Promise<T>): Promise<T> {
    const fn = typeof a === 'function' ? a : b;
    if (fn === undefined) throw new TypeError('Breakwater.run: a function is required');
    const options: RunOptions = typeof a === 'string' ? { runId: a } : typeof a === 'object' && a !== null ? a : {};
    const scope: RunScope = {
      owner: this.#owner,
      tenantId: this.tenantId,
      runId: options.runId ?? randomUUID(),
      depth: 0,
      agentName: options.agentName ?? this.#agentName,
    };
    const attributes: Attributes = { ...options.attributes };
    if (options.conversationId !== undefined) attributes[ATTR.conversationId] = options.conversationId;
    return this.#agent(scope, attributes, fn);
  }

  /** Alias of run(). */
  runAgent<T>(runIdOrOptions: string | RunOptions | undefined, fn: (run: RunHandle) => T | Promise<T>): Promise<T> {
    return this.run(runIdOrOptions, fn);
  }

  /**
   * Runs `fn` as a sub-agent of the current run: same root run id (its usage counts toward the root
   * run), depth + 1, inside an invoke_agent span named after it. Must be called inside run().
   */
  subAgent<T>(name: string, fn: (run: RunHandle) => T | Promise<T>, options: SubAgentOptions = {}): Promise<T> {
    const parent = this.#scope();
    if (parent === undefined) return Promise.reject(new Error('Breakwater.subAgent: call it inside bw.run()'));
    const scope: RunScope = { ...parent, depth: parent.depth + 1, agentName: name };
    const attributes: Attributes = { ...options.attributes };
    if (options.agentId !== undefined) attributes[ATTR.agentId] = options.agentId;
    return this.#agent(scope, attributes, fn);
  }

  /** The run the calling code belongs to, if any (of this instance). */
  currentRun(): { runId: string; depth: number; agentName: string } | undefined {
    const scope = this.#scope();
    return scope && { runId: scope.runId, depth: scope.depth, agentName: scope.agentName };
  }

  #scope(): RunScope | undefined {
    const scope = activeScope();
    return scope !== undefined && scope.owner === this.#owner ? scope : undefined;
  }

  #agent<T>(scope: RunScope, attributes: Attributes, fn: (run: RunHandle) => T | Promise<T>): Promise<T> {
    const ctx = context.active().setValue(RUN_SCOPE_KEY, scope);
    const spanAttributes: Attributes = { ...attributes, [ATTR.operation]: 'invoke_agent', [ATTR.agentName]: scope.agentName };
    return this.#tracer().startActiveSpan(`invoke_agent ${scope.agentName}`, { kind: SpanKind.INTERNAL, attributes: spanAttributes }, ctx, async (span) => {
      try {
        return await fn({ tenantId: scope.tenantId, runId: scope.runId, depth: scope.depth, agentName: scope.agentName, span });
      } catch (err) {
        recordError(span, err);
        throw err;
      } finally {
        span.end();
      }
    });
  }

  // ---- span helpers -----------------------------------------------------------------------------

  /**
   * A model call span (`chat {model}`, gen_ai.* request attributes; usage and response model from
   * what `fn` returns; error.type, status ERROR and http.response.status_code when it throws).
   * Returns what `fn` returned.
   */
  modelCall<R extends ModelUsage>(request: ModelCallRequest, fn: (span: Span) => Promise<R> | R): Promise<R> {
    return modelCallSpan(this.#tracer(), request, fn);
  }

  /** A tool call span (`execute_tool {name}`, gen_ai.tool.name). Returns what `fn` returned. */
  toolCall<T>(name: string, fn: (span: Span) => Promise<T> | T, options?: ToolCallOptions): Promise<T> {
    return toolCallSpan(this.#tracer(), name, fn, options);
  }

  /** The tracer this instance's spans are made with. */
  get tracer(): Tracer {
    return this.#tracer();
  }

  // ---- decisions --------------------------------------------------------------------------------

  /**
   * Applies Breakwater's latest decision for the current run (and the tenant) at a step boundary,
   * from the local cache: no network round trip.
   * HALT: awaits onHalt, then throws BreakwaterHaltError. THROTTLE: waits the retry-after (capped
   * by maxThrottleWaitMs), then returns. DEGRADE: returns the fallback model (`model`, degraded).
   * WARN: calls onWarn once per warning, returns. ALLOW: returns at once.
   */
  async checkpoint(options: CheckpointOptions = {}): Promise<CheckpointResult> {
    const runId = options.runId ?? this.#scope()?.runId;
    const now = Date.now();
    const downFor = this.#downFor(now);
    const stale = downFor > this.#graceMs;
    if (stale) {
      this.#logStale(downFor);
      if (this.#failMode === 'closed') return this.#haltUnavailable(runId, downFor, now);
    }
    const entries = this.#applicable(runId, now, stale);
    const winner = mostSevereEntry(entries);
    if (winner === undefined) {
      return { action: 'ALLOW', decision: this.#allow(runId, now), model: options.model, degraded: false, waitedMs: 0, stale };
    }
    const decision = winner.decision;
    if (decision.action === 'HALT') {
      const error = new BreakwaterHaltError(decision, runId);
      await this.#callOnHalt(decision, error);
      throw error;
    }
    let waitedMs = 0;
    if (decision.action === 'THROTTLE' || decision.action === 'DEGRADE') {
      const wait = Math.min(this.#maxWaitMs, retryAt(winner) - now);
      if (wait > 0) waitedMs = await sleep(wait, this.#stop.signal);
    } else if (decision.action === 'WARN') {
      this.#warnOnce(decision);
    }
    const degradedEntry = entries.find((e) => e.decision.fallbackModel !== undefined && (e === winner || e.decision.degraded === true));
    const model = degradedEntry?.decision.fallbackModel ?? options.model;
    const degraded = decision.action === 'DEGRADE' || (degradedEntry?.decision.degraded ?? false);
    return { action: decision.action, decision, model, degraded, waitedMs, stale };
  }

  /** The decision checkpoint() would apply now, without applying it (no hooks, no waiting). */
  currentDecision(runId?: string): Decision {
    const id = runId ?? this.#scope()?.runId;
    const now = Date.now();
    const stale = this.#downFor(now) > this.#graceMs;
    return mostSevereEntry(this.#applicable(id, now, stale))?.decision ?? this.#allow(id, now);
  }

  #applicable(runId: string | undefined, now: number, stale: boolean): CachedDecision[] {
    return applicableDecisions(this.#cache, this.#judge, runId, now, { connected: this.#downSince === undefined, stale });
  }

  /** Calls `listener` with every decision received for the tenant; returns the unsubscribe. */
  onDecision(listener: (decision: Decision) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  status(): BreakwaterStatus {
    const now = Date.now();
    const common = {
      failMode: this.#failMode,
      reconnects: this.#client.reconnects,
      cachedRuns: this.#cache.runCount,
      localDecisions: this.#judge?.policy !== undefined,
      ...(this.#client.lastError ? { lastError: this.#client.lastError } : {}),
      ...(this.#exporting ? { exports: this.#exporting.stats() } : {}),
    };
    if (this.#closedAt !== undefined) return { state: 'closed', connected: false, stale: true, since: new Date(this.#closedAt), ...common };
    if (this.#downSince === undefined) return { state: 'connected', connected: true, stale: false, since: new Date(this.#connectedSince), ...common };
    const stale = now - this.#downSince > this.#graceMs;
    return { state: stale ? 'stale' : 'connecting', connected: false, stale, since: new Date(this.#downSince), ...common };
  }

  /** Exports every finished span now; spans that cannot be delivered are counted in status().exports and logged. */
  flush(): Promise<void> {
    return this.spanProcessor.forceFlush();
  }

  /** Closes the subscription, flushes and shuts down this instance's telemetry. */
  shutdown(): Promise<void> {
    return (this.#shutdown ??= (async () => {
      this.#closedAt = Date.now();
      this.#stop.abort();
      clearTimeout(this.#staleTimer);
      clearTimeout(this.#pruneTimer);
      clearInterval(this.#policyTimer);
      this.#client.close();
      try {
        await this.#shutdownTelemetry();
      } catch (err) {
        // An agent that fails open must not crash on its way out because telemetry could not close.
        if (this.#failMode === 'closed') throw err;
        this.#logger.warn('telemetry did not shut down cleanly; carrying on (failMode open)', { tenantId: this.tenantId, error: err instanceof Error ? err.message : String(err) });
      } finally {
        if (globalInstance === this) globalInstance = undefined;
      }
    })());
  }

  #onDecision(decision: Decision): void {
    this.#cache.apply(decision, Date.now());
    this.#judge?.serverDecision(decision);
    this.#tell(decision);
  }

  /** Tells the onDecision listeners of a decision, the server's or a local one. */
  #tell(decision: Decision): void {
    for (const listener of this.#listeners) {
      try {
        listener(decision);
      } catch (err) {
        this.#logger.error('an onDecision listener threw', { error: String(err) });
      }
    }
  }

  #onConnected(): void {
    const generation = this.#cache.beginGeneration();
    clearTimeout(this.#pruneTimer);
    // The new connection's snapshot lists only runs not at ALLOW: once it is in, runs it did not
    // mention are allowed again.
    this.#pruneTimer = setTimeout(() => this.#cache.prune(generation), 1_000);
    this.#pruneTimer.unref();
    if (this.#staleLogged) this.#logger.info('decisions are current again', { tenantId: this.tenantId });
    // A reconnection may follow a restart with another policy: read the thresholds again.
    if (this.#client.reconnects > 0) void this.#refreshPolicy();
    this.#downSince = undefined;
    this.#connectedSince = Date.now();
    this.#staleLogged = false;
    clearTimeout(this.#staleTimer);
  }

  #onDisconnected(): void {
    if (this.#downSince !== undefined) return;
    this.#downSince = Date.now();
    this.#armStaleTimer();
  }

  /** Says so once the grace period has passed without a connection, whether or not anyone checks. */
  #armStaleTimer(): void {
    clearTimeout(this.#staleTimer);
    this.#staleTimer = setTimeout(() => this.#logStale(this.#downFor(Date.now())), this.#graceMs + 1);
    this.#staleTimer.unref();
  }

  #downFor(now: number): number {
    if (this.#closedAt !== undefined) return Infinity;
    return this.#downSince === undefined ? 0 : now - this.#downSince;
  }

  #logStale(downFor: number): void {
    if (this.#staleLogged || this.#closedAt !== undefined || downFor <= this.#graceMs) return;
    this.#staleLogged = true;
    this.#logger.warn(
      this.#failMode === 'open'
        ? 'Breakwater unreachable: decisions are stale; failing open (runs continue on the last known decisions)'
        : 'Breakwater unreachable: failing closed (every checkpoint halts until it is back)',
      { tenantId: this.tenantId, downForMs: downFor, reason: this.#client.lastError },
    );
  }

  async #haltUnavailable(runId: string | undefined, downFor: number, now: number): Promise<never> {
    const nextRetry = this.#client.nextRetryAt;
    const decision: Decision = {
      tenantId: this.tenantId,
      ...(runId !== undefined ? { runId } : {}),
      scope: 'TENANT',
      action: 'HALT',
      state: 'OPEN',
      reason: `Breakwater unreachable (${this.#client.lastError ?? 'no connection'}); failMode is closed`,
      metric: 'breakwater.unreachable',
      threshold: this.#graceMs,
      observed: Number.isFinite(downFor) ? downFor : 0,
      retryAfterMs: nextRetry === undefined ? 0 : Math.max(0, nextRetry - now),
      sequence: 0,
      issuedAt: new Date(now).toISOString(),
    };
    const error = new BreakwaterUnavailableError(decision, runId, decision.observed);
    await this.#callOnHalt(decision, error);
    throw error;
  }

  async #callOnHalt(decision: Decision, error: BreakwaterHaltError): Promise<void> {
    if (!this.#o.onHalt) return;
    try {
      await this.#o.onHalt(decision, error);
    } catch (err) {
      this.#logger.error('onHalt threw; halting anyway', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  #warnOnce(decision: Decision): void {
    if (!this.#o.onWarn) return;
    const key = `${decision.runId ?? ''}\u0000${decision.sequence}`;
    if (this.#warned.has(key)) return;
    if (this.#warned.size >= 1_000) this.#warned.clear();
    this.#warned.add(key);
    try {
      this.#o.onWarn(decision);
    } catch (err) {
      this.#logger.error('onWarn threw', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  #allow(runId: string | undefined, now: number): Decision {
    return { ...allowDecision(this.tenantId, runId), sequence: 0, issuedAt: new Date(now).toISOString() };
  }
}

function exportingProcessor(options: ExportOptions, tracesUrl: string, logger: SdkLogger, onAccepted: (spans: readonly ReadableSpan[]) => void): StepExportProcessor {
  const maxConcurrentExports = options.maxConcurrentExports ?? 4;
  const exporter = new OTLPTraceExporter({
    url: tracesUrl,
    headers: options.ingestKey ? { Authorization: `Bearer ${options.ingestKey}` } : {},
    timeoutMillis: 10_000,
    // The exporter frees a slot a tick after it answers, so its own limit stays above the processor's.
    concurrencyLimit: 2 * maxConcurrentExports,
  });
  return new StepExportProcessor({
    exporter,
    logger,
    maxConcurrentExports,
    onAccepted,
    ...(options.scheduledDelayMillis !== undefined ? { scheduledDelayMillis: options.scheduledDelayMillis } : {}),
  });
}

/** The local judge in front of the exporting processor, unless the options turn it off. */
function localDecisionProcessor(options: BreakwaterOptions, exporting: StepExportProcessor, logger: SdkLogger): LocalDecisionProcessor | undefined {
  if (options.localDecisions === false) return undefined;
  return new LocalDecisionProcessor({ judge: new LocalJudge({ tenantId: options.tenantId }), next: exporting, logger });
}

function globalDelegate(): TracerProvider {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
}

/**
 * Adds a processor to a provider built before Breakwater. 1.x providers have addSpanProcessor; 2.x
 * providers take processors in their constructor only, so the processor joins their processor
 * list (the field their own forceFlush walks). Returns how to take it out again, or why it cannot.
 */
function addSpanProcessor(provider: TracerProvider, processor: SpanProcessor): (() => void) | string {
  const target = (provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider) as {
    addSpanProcessor?: (p: SpanProcessor) => void;
    _activeSpanProcessor?: { _spanProcessors?: SpanProcessor[] };
    constructor?: { name?: string };
  };
  if (typeof target.addSpanProcessor === 'function') {
    target.addSpanProcessor(processor);
    return () => {};
  }
  const list = target._activeSpanProcessor?._spanProcessors;
  if (Array.isArray(list)) {
    list.push(processor);
    return () => {
      const i = list.indexOf(processor);
      if (i >= 0) list.splice(i, 1);
    };
  }
  if (target.constructor?.name === 'NoopTracerProvider') {
    return 'no OpenTelemetry SDK is registered yet: start yours first, or use Breakwater.start(), or pass register: false and add bw.spanProcessor to your provider';
  }
  return 'cannot add a span processor to this TracerProvider: pass register: false and add bw.spanProcessor to its spanProcessors';
}

/** Waits `ms` or until `signal` aborts; resolves with the ms actually waited. */
function sleep(ms: number, signal: AbortSignal): Promise<number> {
  const started = Date.now();
  if (signal.aborted) return Promise.resolve(0);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve(Date.now() - started);
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
