import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createGatewayServer } from '../gateway/gateway-listener.js';
import { AuthFailureLimiter, createAuthenticator, type AuthConfig, type Authenticator } from '../api/auth.js';
import { authCounts, authDropped } from '../api/auth-reload.js';
import type { PolicyDocument } from '../policy/policy-types.js';
import { createGraphqlService, DEFAULT_LIMITS } from '../api/graphql-server.js';
import { createConsoleRoutes } from '../console/console-routes.js';
import { resolveAuthConfig } from '../api/secrets.js';
import { AnomalyDetector } from '../breakers/anomaly.js';
import { recentRunTotals } from '../storage/repositories/clickhouse-run-totals.js';
import { BreakerEngine } from '../breakers/breaker-engine.js';
import { ConfigError, isLoopback, type ServiceConfig } from './config.js';
import { DegradationEngine } from '../degradation/degradation-engine.js';
import { SourcedDecisionBus } from '../decisions/sourced-decision-bus.js';
import { loadBaselines, recomputeBaselines } from '../jobs/anomaly-baselines.js';
import { breakerStatePruneJob } from '../jobs/breaker-state-prune.js';
import { JobScheduler } from '../jobs/scheduler.js';
import { SelfMetricsSnapshotter, selfMetricsSnapshotJob } from '../jobs/self-metrics-snapshot.js';
import { loadPolicyFile } from '../policy/load-policy.js';
import { AffectedTenantsAudit, auditFileReloads } from '../policy/policy-change-audit.js';
import { PolicyStore } from '../policy/policy-store.js';
import { RuntimePolicy } from '../policy/runtime-policy.js';
import { WindowStore } from '../windows/window-store.js';
import { RunAdmission } from './run-admission.js';
import { RefusalLog } from './refusal-log.js';
import { createRunbooksHandler } from './runbooks-page.js';
import type { AuditLog } from '../audit/audit-log.js';
import { openAudit } from './open-audit.js';
import { IngestPipeline } from './pipeline.js';
import { createTraceReceiver } from '../receivers/otlp-http.js';
import { TenantIngestLimiter } from '../receivers/tenant-rate-limit.js';
import type { Logger } from './log.js';
import { SelfMetrics } from './self-metrics.js';
import { resolveWebhookEndpoints } from '../notify/webhook-config.js';
import { startNotifier } from '../notify/notifier.js';
import { WebhookOutbox } from '../notify/webhook-outbox.js';
import { openStore, type Store, type StoreOptions } from '../storage/clickhouse.js';
import { keepStorageThreadsLow } from '../storage/storage-thread-priority.js';
import { applyRetention, migrate, migrationsApplied } from '../storage/migrations.js';
import { SpanWriter } from '../storage/span-writer.js';
import { IngestWal } from '../storage/ingest-wal.js';
import { WalCommitter } from './wal-committer.js';
import { replayIngestWal } from './replay-ingest-wal.js';

export interface Service {
  otlpUrl: string;
  graphqlUrl: string;
  /** the model gateway, without /v1 */
  gatewayUrl: string;
  store: Store;
  pipeline: IngestPipeline;
  writer: SpanWriter;
  metrics: SelfMetrics;
  core: Core;
  /** stops accepting, flushes what was accepted until the shutdown deadline, closes storage */
  stop(timeoutMs?: number): Promise<void>;
}

export function storeOptions(config: ServiceConfig, log?: Logger): StoreOptions {
  return {
    url: config.clickhouseUrl,
    user: config.clickhouseUser,
    password: config.clickhousePassword,
    database: config.clickhouseDatabase,
    dataDir: config.dataDir,
    timeoutMs: config.clickhouseTimeoutMs,
    startupWaitMs: config.clickhouseStartupWaitMs,
    onUnreachable: (retryInMs, err) => log?.warn({ reason: err instanceof Error ? err.message : String(err), retryInMs }, 'ClickHouse is unreachable; retrying'),
  };
}

/** A run idle this long leaves the windows; one active within it is resumed at start. */
const RUN_IDLE_MS = 15 * 60_000;
/** How far back a resumed run's spans are read: a run older than a day resumes with its last day. */
const RUN_READ_BACK_MS = 24 * 3_600_000;
const MAX_RUNS = 100_000;

/** Everything behind the listeners: what the API reads and changes. */
export interface Core {
  store: Store;
  metrics: SelfMetrics;
  policy: PolicyStore;
  runtimePolicy: RuntimePolicy;
  windows: WindowStore;
  bus: SourcedDecisionBus;
  audit: AuditLog;
  engine: BreakerEngine;
  degradation: DegradationEngine;
  anomaly: AnomalyDetector;
  /** counts and logs what the per-tenant bounds refuse */
  refusals: RefusalLog;
  /** the current authenticator (rebuilt when the policy file's auth section changes) */
  auth(): Authenticator;
}

/** Starts Breakwater: storage and migrations first, then the decision path, then the listeners. */
export async function startService(config: ServiceConfig, log: Logger): Promise<Service> {
  const fileDocument = await loadPolicyFile(config.policyFile, { explicit: config.policyFileExplicit });
  let authConfig = resolveAuthConfig(fileDocument.auth, process.env);
  let authenticator = createAuthenticator(authConfig);
  // a webhook secret that cannot be read stops the start before storage is opened, as a token does
  resolveWebhookEndpoints(fileDocument.notifications, process.env);
  // No API token is allowed on a loopback address, or with --insecure: at start and at every reload.
  const unprotected = (auth: Authenticator) => !isLoopback(config.host) && !auth.hasApiTokens && !config.insecure;
  if (unprotected(authenticator)) {
    throw new ConfigError(
      `refusing to listen on ${config.host} without API tokens: add auth.adminTokens to the policy file, or pass --insecure`,
    );
  }

  log.info(
    {
      file: existsSync(config.policyFile) ? config.policyFile : null,
      tiers: Object.keys(fileDocument.tiers),
      defaultTier: fileDocument.defaultTier,
      tenants: Object.keys(fileDocument.tenants).length,
      prices: Object.keys(fileDocument.prices).length,
    },
    existsSync(config.policyFile) ? 'policy in force: the policy file' : `policy in force: the built-in default (no file at ${config.policyFile}; the built-in price table prices common models)`,
  );
  const store = await openStore(storeOptions(config, log));
  log.info({ mode: store.mode, location: store.location }, 'storage opened');
  const stopLoweringStorage = store.mode === 'embedded' ? keepStorageThreadsLow(config.storageNice) : () => {};
  const migrations = await migrate(store.client);
  await applyRetention(store.client, config.retentionDays);
  log.info({ applied: migrations.applied, alreadyApplied: migrations.alreadyApplied.length }, 'migrations done');

  const metrics = new SelfMetrics();
  metrics.queueCapacity.set(config.queueMaxSpans);
  const refusalLog = new RefusalLog(metrics, log);
  const { audit, ...auditIntegrity } = await openAudit(store.client, config, metrics, log);
  const policy = new PolicyStore();
  // the windows are built further down; a reload before then finds the tenants of the audit log
  let liveTenants: () => Iterable<string> = () => [];
  const affectedTenants = new AffectedTenantsAudit(audit, () => [...liveTenants(), ...audit.tenants()]);
  const runtimePolicy = new RuntimePolicy(policy, store.client, audit, log, affectedTenants);
  await runtimePolicy.load(fileDocument);
  policy.onChange((document, source) => {
    try {
      const next = resolveAuthConfig(document.auth, process.env);
      authenticator = createAuthenticator(next);
      authConfig = next;
      log.info({ source, ...authCounts(next) }, 'policy changed; credentials in force');
    } catch (err) {
      log.error({ error: (err as Error).message }, 'auth section not applied; the previous tokens stay in force');
    }
  });
  if (existsSync(config.policyFile)) {
    auditFileReloads(policy, config.policyFile, audit, affectedTenants);
    policy.watchFile(config.policyFile, {
      onError: (err) => log.error({ error: err.message }, 'policy file not reloaded; the last good policy stays in force'),
      vet: (document) => reloadRefusal(document),
    });
  }
  /** Why a reloaded file must not replace the one in force: it loosens authentication by accident. */
  function reloadRefusal(document: PolicyDocument): string | undefined {
    let next: AuthConfig;
    try {
      next = resolveAuthConfig(document.auth, process.env);
    } catch (err) {
      return `its auth section cannot be read (${(err as Error).message})`;
    }
    if (unprotected(createAuthenticator(next))) {
      return `it holds no API token, and ${config.host} is not a loopback address (--insecure allows it)`;
    }
    const dropped = config.allowAuthRemoval ? undefined : authDropped(authConfig, next);
    return dropped === undefined ? undefined : `it drops ${dropped} (a truncated or half-written file does; --allow-auth-removal allows it)`;
  }

  // Two engines publish (breakers, degradation): the bus keeps each one's latest and publishes the more severe.
  const bus = new SourcedDecisionBus({ initialSequence: sequenceSeed() });
  const notifier = startNotifier({ bus, policy, metrics, refusals: refusalLog, log, outboxDir: WebhookOutbox.dirIn(config.dataDir) });
  const anomaly = new AnomalyDetector();
  await loadBaselines(store.client, anomaly);
  const windows = new WindowStore({
    runIdleMs: RUN_IDLE_MS,
    maxRuns: MAX_RUNS,
    maxRunsPerTenant: config.maxRunsPerTenant,
    prices: () => policy.current().prices,
    errorRatio: (tenantId) => policy.forTenant(tenantId).errorRatio,
    holdsDecision: (tenantId, runId) => engine.holdsDecision(tenantId, runId) || degradation.holdsDecision(tenantId, runId),
    onEvict: (event) => {
      // Called only from engine.observe (through record), so `engine` is initialised by then.
      if (event.kind === 'run') {
        engine.forgetRun(event.tenantId, event.runId);
        degradation.forgetRun(event.tenantId, event.runId);
      }
    },
  });
  liveTenants = () => windows.tenants();
  const engine: BreakerEngine = new BreakerEngine({
    windows,
    policy,
    bus,
    audit,
    anomaly,
    log,
    now: Date.now,
    onDecisionLatency: (seconds) => metrics.decisionLatency.observe(seconds),
    maxRunBreakersPerTenant: config.maxRunsPerTenant,
    refusals: refusalLog,
  });
  const restored = await engine.restore();
  if (restored > 0) log.info({ breakers: restored }, 'breaker states restored');
  const resumedRuns = windows.resumeRuns(await recentRunTotals(store.client, { activeSinceMs: Date.now() - RUN_IDLE_MS, readFromMs: Date.now() - RUN_READ_BACK_MS, maxRuns: MAX_RUNS }));
  if (resumedRuns > 0) log.info({ runs: resumedRuns }, 'run budgets resumed from stored spans');
  engine.start();
  const degradation: DegradationEngine = new DegradationEngine({
    bus: bus.sink('degradation'),
    audit,
    log,
    now: Date.now,
    policy: () => policy.current().degradation,
    tenantMetrics: (tenantId) => windows.tenantMetrics(tenantId),
    runMetrics: (tenantId, runId) => windows.runMetrics(tenantId, runId),
    prices: () => policy.current().prices,
    onQuotaLevel: (c) => log.warn({ key: c.key, provider: c.provider, level: c.to, utilization: c.utilization }, 'provider key quota level changed'),
  });
  const resumed = await degradation.restore(store.client);
  if (resumed > 0) log.info({ tracks: resumed }, 'degradation tiers restored');
  degradation.start();

  const jobs = new JobScheduler(log);
  jobs.add({ name: 'anomaly-baselines', schedule: '*/15 * * * *', run: () => recomputeBaselines(store.client, anomaly) });
  jobs.add({ name: 'evict-idle-windows', schedule: '*/30 * * * * *', run: async () => windows.evictIdle() });
  jobs.add(breakerStatePruneJob(audit));
  jobs.add(selfMetricsSnapshotJob(new SelfMetricsSnapshotter(metrics.registry, store.client, { tenantThresholds: { windows, policy } })));

  const writer = new SpanWriter(store.client, {
    table: 'spans',
    batchMaxRows: config.batchMaxSpans,
    batchMaxDelayMs: config.batchMaxDelayMs,
    queueMaxRows: config.queueMaxSpans,
    // A batch holds at most one request's attribute budget, the queue eight.
    batchMaxBytes: config.maxRequestAttributeBytes,
    queueMaxBytes: 8 * config.maxRequestAttributeBytes,
    onFlush: (rows, seconds) => {
      metrics.flushSeconds.observe(seconds);
      metrics.flushSpans.observe(rows);
    },
    onFlushError: (error, rows) => {
      metrics.flushFailures.inc();
      log.error({ error: error.message.slice(0, 300), rows }, 'insert into ClickHouse failed; requests answered 503');
    },
    onQueueDepth: (rows) => metrics.queueDepth.set(rows),
  });
  const ingestWal = config.ingestWal ? IngestWal.open(join(config.dataDir, 'ingest-wal'), { maxBytes: config.ingestWalMaxBytes }) : undefined;
  const walCommitter = ingestWal && new WalCommitter(ingestWal.wal, writer, {
    earlyAckMaxQueuedRows: config.batchMaxSpans,
    onRetry: (error, spans) => log.error({ error: error.message.slice(0, 300), spans }, 'insert of acknowledged spans failed; retrying from the ingest write-ahead file'),
    onDropped: (error, spans) => {
      metrics.spansRejected.inc({ reason: 'storage_refused' }, spans);
      log.error({ error: error.message.slice(0, 300), spans }, 'ClickHouse refused acknowledged spans; dropped from the ingest write-ahead file');
    },
  });
  const pipeline = new IngestPipeline(writer, metrics, {
    requireTenant: config.requireTenant,
    prices: () => policy.current().prices,
    runKeys: () => policy.current().runKeys,
    retentionDays: config.retentionDays,
    tenantQueueShare: config.tenantQueueSharePercent / 100,
    admission: new RunAdmission(windows, (tenantId, reason, runs, spans) => refusalLog.refused(tenantId, reason, { runs, spans })),
    refusals: refusalLog,
    attributeBudget: { maxAttributes: config.maxRequestAttributes, maxBytes: config.maxRequestAttributeBytes },
    onObserverError: (err) => log.error({ error: (err as Error).message }, 'the decision path failed on a batch; its spans are stored'),
    ...(walCommitter ? { wal: walCommitter } : {}),
  });
  pipeline.addObserver(engine);
  // After the breaker engine: it reads the windows that engine.observe has just updated.
  pipeline.addObserver(degradation);
  if (ingestWal && ingestWal.records.length > 0) {
    const replayed = await replayIngestWal(ingestWal.records, pipeline, ingestWal.wal, store.client, { attributeLimits: { perList: config.maxAttributes }, chunkSpans: 10_000 });
    log.info(replayed, 'acknowledged spans replayed from the ingest write-ahead file');
  }
  const receiveTraces = createTraceReceiver(pipeline, metrics, {
    maxBodyBytes: config.maxBodyBytes,
    attributeLimits: { perList: config.maxAttributes },
    tenantForKey: (key) => authenticator.tenantForIngestKey(key),
    limiter: new TenantIngestLimiter({
      spansPerSecond: config.tenantIngestRate,
      burstSeconds: 5,
      unknown: {
        spansPerSecond: config.unknownTenantIngestRate,
        maxTenants: config.maxUnknownTenants,
        // with ingest keys every tenant is bound by a key, so only the policy's own budget applies
        isKnown: (tenant) => authenticator.hasIngestKeys || Object.hasOwn(policy.current().tenants, tenant),
      },
    }),
    refusals: refusalLog,
    authFailures: new AuthFailureLimiter(),
    onInternalError: (err) => log.error({ error: (err as Error).message }, 'unexpected error handling an OTLP request'),
  });
  const core: Core = { store, metrics, policy, runtimePolicy, windows, bus, audit, engine, degradation, anomaly, refusals: refusalLog, auth: () => authenticator };

  const ops = createOpsHandler(store, metrics, log);
  const serverOptions = httpServerOptions(config);
  const otlpServer = createServer(serverOptions, (req, res) => {
    const path = pathOf(req);
    if (path === '/v1/traces') void receiveTraces(req, res);
    else if (!ops(req, res, path)) notFound(res);
  });
  const graphql = createGraphqlService(core, {
    ...DEFAULT_LIMITS,
    introspection: config.graphqlIntrospection,
    maxSubscriptionsPerConnection: config.maxSubscriptionsPerConnection,
    maxSubscriptionsPerToken: config.maxSubscriptionsPerToken,
  });
  const runbooks = createRunbooksHandler();
  const consoleRoutes = createConsoleRoutes();
  const graphqlServer = createServer(serverOptions, (req, res) => {
    const path = pathOf(req);
    if (!graphql.handle(req, res, path) && !consoleRoutes(req, res, path) && !ops(req, res, path) && !runbooks(req, res, path)) notFound(res);
  });
  graphql.attachWebSocket(graphqlServer);
  const gatewayServer = createGatewayServer(
    { auth: () => authenticator, bus, policy, pipeline, log },
    { openaiUrl: config.gatewayOpenaiUrl, anthropicUrl: config.gatewayAnthropicUrl, upstreamTimeoutMs: config.gatewayUpstreamTimeoutMs, maxBodyBytes: config.maxBodyBytes, env: process.env },
    { ...serverOptions, requestTimeout: 0 },
  );
  for (const server of [otlpServer, graphqlServer, gatewayServer]) server.maxHeadersCount = 100;

  if (!isLoopback(config.host)) log.warn({ host: config.host, insecure: config.insecure }, 'listening on a non-loopback address');
  const otlpAddress = await listen(otlpServer, config.host, config.otlpPort);
  const graphqlAddress = await listen(graphqlServer, config.host, config.graphqlPort);
  const otlpUrl = urlOf(otlpAddress);
  const graphqlUrl = urlOf(graphqlAddress);
  const gatewayUrl = urlOf(await listen(gatewayServer, config.host, config.gatewayPort));
  log.info({ otlp: `${otlpUrl}/v1/traces`, graphql: `${graphqlUrl}/graphql`, gateway: `${gatewayUrl}/v1` }, 'breakwater listening');
  auditIntegrity.start();

  let stopping: Promise<void> | undefined;
  const stop = (timeoutMs = config.shutdownTimeoutMs) =>
    (stopping ??= (async () => {
      const deadline = Date.now() + timeoutMs;
      // Stop accepting first, but flush before waiting on the servers: open requests are waiting
      // for exactly that flush to be answered.
      const serversClosed = Promise.all([closeServer(otlpServer), closeServer(graphqlServer), closeServer(gatewayServer)]);
      engine.stop();
      degradation.stop();
      await graphql.close();
      policy.close();
      await jobs.stop();
      const spansFlushed = await beforeDeadline(writer.close(), deadline);
      walCommitter?.close();
      // Subscription streams (SSE) never end on their own; close them so the servers can. Requests
      // whose spans missed the deadline were never acknowledged: their exporters retry them.
      graphqlServer.closeAllConnections();
      if (!spansFlushed) otlpServer.closeAllConnections();
      // A streamed model answer can run for minutes; the upstream keeps it, the agent retries.
      gatewayServer.closeAllConnections();
      await beforeDeadline(serversClosed, deadline);
      await beforeDeadline(degradation.flush(), deadline);
      notifier.stop();
      const { pending } = await audit.close(deadline);
      await beforeDeadline(auditIntegrity.close(), deadline);
      stopLoweringStorage();
      if (spansFlushed) await store.close();
      if (pending > 0 || !spansFlushed) {
        log.warn({ auditEventsInWriteAheadLog: pending, spansFlushed }, 'stopped at the shutdown deadline: unconfirmed audit events are replayed at the next start; unacknowledged spans are retried by their exporters');
      }
      log.info('breakwater stopped');
    })());

  return { otlpUrl, graphqlUrl, gatewayUrl, store, pipeline, writer, metrics, core, stop };
}

/**
 * Decision sequences must keep growing across restarts without a write per decision: seed from the
 * clock in microseconds (exact in a double for centuries; GraphQL carries it as a Float).
 */
function sequenceSeed(): number {
  return Date.now() * 1000;
}

type OpsHandler = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

/** /healthz (the process answers), /readyz (storage reachable and migrated), /metrics (Prometheus). */
function createOpsHandler(store: Store, metrics: SelfMetrics, log: Logger): OpsHandler {
  return (req, res, path) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      return true;
    }
    if (path === '/readyz') {
      void readiness(store).then(
        (problem) => {
          const status = problem === undefined ? 200 : 503;
          res.writeHead(status, { 'Content-Type': 'text/plain' }).end(problem === undefined ? 'ready\n' : `not ready: ${problem}\n`);
        },
        () => res.writeHead(503, { 'Content-Type': 'text/plain' }).end('not ready\n'),
      );
      return true;
    }
    if (path === '/metrics') {
      void (async () => {
        let text: string;
        // A failing collector must cost this one scrape, not the process or a request left hanging.
        try {
          text = await metrics.registry.metrics();
        } catch (err) {
          log.error({ error: (err as Error).message }, 'could not build the metrics text; /metrics answered 500');
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics unavailable\n');
          return;
        }
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text);
      })();
      return true;
    }
    return false;
  };
}

async function readiness(store: Store): Promise<string | undefined> {
  const ping = await store.client.ping();
  if (!ping.success) return 'ClickHouse unreachable';
  if (!(await migrationsApplied(store.client))) return 'migrations not applied';
  return undefined;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
}

/** Slow clients cannot hold a connection open forever (slowloris). */
/**
 * Limits against slow and greedy clients (408 for a request not sent in time). Node enforces the
 * timeouts from a periodic sweep, by default every 30 s; sweeping at a fifth of the headers
 * timeout keeps the cut close to the configured time.
 */
function httpServerOptions(config: ServiceConfig): ServerOptions {
  return {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(config.headersTimeoutMs / 5))),
    keepAliveTimeout: 5_000,
    maxHeaderSize: 16 * 1024,
  };
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** Waits for `work` until `deadline` (epoch ms); true when it finished in time. */
async function beforeDeadline(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([work.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
