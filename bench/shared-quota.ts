// The shared-quota scenario (issue 21): eight steady tenants and one runaway agent, all on the free
// tier, share one provider token bucket. The runaway's run crosses its tokenVelocity10s threshold
// on its fifth model call; what counts is how many model calls it still makes after that crossing,
// and whether the steady tenants ever see a 429. The steady tenants always use the Breakwater SDK;
// the runaway uses it (`sdk`) or plain OpenTelemetry with a BatchSpanProcessor (`otel`), which
// cannot read decisions: there the figure is what it did before Breakwater's HALT existed.
import { SpanKind, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Service } from '../src/app/service.js';
import { ATTR, Breakwater, BreakwaterHaltError, type Decision, type StartOptions } from '../src/sdk/index.js';
import { silentLogger } from '../src/sdk/logger.js';
import { callModel, startMockProvider, type ModelAnswer, type ProviderSpec } from './token-bucket-provider.js';

export const RUNAWAY_TENANT = 'quota-runaway';
export const STEADY_TENANTS = Array.from({ length: 8 }, (_, i) => `quota-steady-${i}`);
/** the free tier's run tokenVelocity10s: tokens/s over 10 s */
const TOKEN_VELOCITY_10S = 1_000;
const RUNAWAY_INPUT = 1_500;
const RUNAWAY_OUTPUT = 1_000;
/** the fifth call takes the run over 10 s x 1,000 tokens/s (the fourth is exactly at it) */
const TOKENS_TO_CROSS = TOKEN_VELOCITY_10S * 10;
const STEADY_INPUT = 60;
const STEADY_OUTPUT = 40;
/** a steady step every 750 ms keeps each tenant under every free-tier threshold (WARN at most) */
const STEADY_STEP_MS = 750;
const STEADY_STEPS_PER_RUN = 10;
/** a runaway run that is not halted stops here: 40 calls are well past any halt */
const RUNAWAY_STEP_CAP = 40;
/** bounds the plain-OTel runaway's wait for a HALT it cannot see: 5 s delay plus margin */
const PLAIN_RUN_CAP_MS = 15_000;

/**
 * Free tier everywhere. The runaway tenant's tenant-wide thresholds are lifted so that thirty runs
 * in a row measure thirty run crossings, not one tenant trip.
 */
export const SHARED_QUOTA_POLICY = `
defaultTier: free
tenants:
  ${RUNAWAY_TENANT}:
    tier: free
    overrides:
      tenant: { tokenVelocity60s: 1000000000000, toolCallsPerMinute: 1000000000000, modelCallsPerMinute: 1000000000000, costPerMinuteUsd: 1000000000000 }
`;

/** The provider's quota: one burst of 60,000 tokens, refilled at 20,000 tokens/s. */
export const PROVIDER: ProviderSpec = { capacity: 60_000, refillPerSecond: 20_000, latencyMs: 10 };

export type RunawayAgent =
  | { kind: 'sdk'; options?: Partial<StartOptions> }
  /** plain OpenTelemetry: BatchSpanProcessor with these settings (undefined: the SDK's defaults, 5,000 ms and 512) */
  | { kind: 'otel'; scheduledDelayMillis?: number; maxExportBatchSize?: number };

export interface RunSample {
  /** model calls the runaway made after the crossing call ended (otel: before the server's HALT existed) */
  stepsAfter: number;
  /** tokens the provider granted those calls */
  tokensAfter: number;
  /** crossing call's end -> the SDK's cache holding HALT (sdk only) */
  sdkHaltMs?: number;
  /** crossing call's end -> Breakwater receiving the request that carried it */
  exportMs: number;
  /** crossing call's end -> Breakwater publishing HALT for the run */
  serverHaltMs: number;
  /** spans the SDK held unsent, every export slot awaiting an answer, just after the crossing call ended (sdk only) */
  queuedAtCrossing?: number;
  /** the metric Breakwater's HALT named */
  metric: string;
}

export interface SharedQuotaResult {
  runs: RunSample[];
  /** steady tenants' model calls, and how many of them the provider answered 429 */
  steadyCalls: number;
  steady429: number;
  /** decisions beyond WARN any steady tenant received */
  steadyBeyondWarn: number;
  /** the shared quota the token shares are of */
  quotaTokens: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** the runaway's own work between model calls: 20-50 ms, as an agent parsing and acting on an answer */
const toolWork = () => sleep(20 + Math.random() * 30);

/** Runs `runs` runaway runs against `service` while the steady tenants work; one runaway run at a time, each on a full bucket. */
export async function runSharedQuota(service: Service, agent: RunawayAgent, runs: number): Promise<SharedQuotaResult> {
  const provider = await startMockProvider(PROVIDER);
  const serverHalts = watchHalts(service);
  const start = (tenantId: string, options: Partial<StartOptions> = {}) =>
    Breakwater.start({ tenantId, otlpUrl: service.otlpUrl, graphqlUrl: service.graphqlUrl, global: false, logger: silentLogger, ...options });
  const steady = await Promise.all(STEADY_TENANTS.map((t) => start(t)));
  let steadyBeyondWarn = 0;
  for (const bw of steady) bw.onDecision((d) => void (d.action !== 'ALLOW' && d.action !== 'WARN' && steadyBeyondWarn++));
  let stopping = false;
  const steadyErrors: unknown[] = [];
  const steadyLoops = steady.map((bw, i) => steadyTenant(bw, STEADY_TENANTS[i]!, provider.url, () => stopping).catch((err: unknown) => void steadyErrors.push(err)));
  const runaway = agent.kind === 'sdk' ? await runawaySdk(await start(RUNAWAY_TENANT, agent.options)) : runawayOtel(service.otlpUrl, agent);
  const samples: RunSample[] = [];
  try {
    await sleep(STEADY_STEP_MS * 2);
    for (let r = 0; r < runs; r++) {
      while (provider.level() < PROVIDER.capacity - 1_000) await sleep(20);
      const runId = `${agent.kind}-${Date.now()}-${r}`;
      const run = await runaway.run(runId, provider.url, serverHalts);
      const halt = await serverHalts.wait(runId, 10_000);
      samples.push({ ...run, exportMs: halt.arrivedAt - run.crossingAt, serverHaltMs: halt.at - run.crossingAt, metric: halt.decision.metric ?? '' });
    }
  } finally {
    stopping = true;
    await Promise.all(steadyLoops);
    await runaway.close();
    await Promise.all(steady.map((bw) => bw.shutdown()));
    serverHalts.close();
    await provider.close();
  }
  if (steadyErrors.length > 0) throw new Error(`shared quota: a steady tenant failed: ${String(steadyErrors[0])}`);
  const sum = (m: Map<string, number>) => STEADY_TENANTS.reduce((n, t) => n + (m.get(t) ?? 0), 0);
  return { runs: samples, steadyCalls: sum(provider.granted) + sum(provider.refused), steady429: sum(provider.refused), steadyBeyondWarn, quotaTokens: PROVIDER.capacity };
}

/** Breakwater's HALTs of the runaway's runs, as its decision bus publishes them. */
function watchHalts(service: Service) {
  const seen = new Map<string, { at: number; decision: Decision }>();
  // the receipt of the request that carried the crossing span: the export path ends there
  const arrived = new Map<string, number>();
  service.pipeline.addObserver({
    observe(spans, receivedAt) {
      for (const span of spans) {
        if (span.tenantId !== RUNAWAY_TENANT || arrived.has(span.runId)) continue;
        if (service.core.bus.latest(RUNAWAY_TENANT, span.runId).action === 'HALT') arrived.set(span.runId, receivedAt);
      }
    },
  });
  const subscription = service.core.bus.subscribe(RUNAWAY_TENANT);
  void (async () => {
    for await (const d of subscription) {
      if (d.action === 'HALT' && d.runId && !seen.has(d.runId)) seen.set(d.runId, { at: performance.now(), decision: d });
    }
  })();
  return {
    has: (runId: string) => seen.has(runId),
    async wait(runId: string, timeoutMs: number) {
      const deadline = performance.now() + timeoutMs;
      while (!seen.has(runId)) {
        if (performance.now() > deadline) throw new Error(`shared quota: Breakwater never halted run ${runId}`);
        await sleep(2);
      }
      return { ...seen.get(runId)!, arrivedAt: arrived.get(runId) ?? NaN };
    },
    close: () => void subscription.return?.(),
  };
}

type ServerHalts = ReturnType<typeof watchHalts>;
interface RunawayRun {
  stepsAfter: number;
  tokensAfter: number;
  sdkHaltMs?: number;
  queuedAtCrossing?: number;
  crossingAt: number;
}
interface Runaway {
  run(runId: string, providerUrl: string, halts: ServerHalts): Promise<RunawayRun>;
  close(): Promise<void>;
}

/** Granted usage, or none for a 429 (the call was made, no tokens were spent). */
async function tryModel(call: () => Promise<ModelAnswer>): Promise<number> {
  try {
    const usage = await call();
    return usage.inputTokens + usage.outputTokens;
  } catch (err) {
    if ((err as { status?: number }).status === 429) return 0;
    throw err;
  }
}

/** Counts the calls and tokens after the one that took the run's tokens past TOKENS_TO_CROSS. */
function crossingCounter() {
  let total = 0;
  const c = { crossingAt: NaN, stepsAfter: 0, tokensAfter: 0 };
  return {
    c,
    add(tokens: number) {
      if (!Number.isNaN(c.crossingAt)) {
        c.stepsAfter++;
        c.tokensAfter += tokens;
      } else if ((total += tokens) > TOKENS_TO_CROSS) c.crossingAt = performance.now();
    },
    crossed: () => !Number.isNaN(c.crossingAt),
  };
}

async function runawaySdk(bw: Breakwater): Promise<Runaway> {
  const haltSeen = new Map<string, number>();
  bw.onDecision((d) => void (d.action === 'HALT' && d.runId && !haltSeen.has(d.runId) && haltSeen.set(d.runId, performance.now())));
  return {
    async run(runId, providerUrl) {
      const counter = crossingCounter();
      let queuedAtCrossing = NaN;
      try {
        await bw.run(runId, async () => {
          for (let step = 0; step < RUNAWAY_STEP_CAP; step++) {
            await bw.checkpoint();
            const crossedBefore = counter.crossed();
            counter.add(
              await tryModel(() => bw.modelCall({ provider: 'mock', model: 'big-model' }, () => callModel(providerUrl, RUNAWAY_TENANT, RUNAWAY_INPUT, RUNAWAY_OUTPUT))),
            );
            if (!crossedBefore && counter.crossed()) queuedAtCrossing = bw.status().exports?.queued ?? NaN;
            await bw.toolCall('act', toolWork);
          }
        });
        throw new Error(`shared quota: run ${runId} was never halted by the SDK`);
      } catch (err) {
        if (!(err instanceof BreakwaterHaltError)) throw err;
      }
      if (!counter.crossed()) throw new Error(`shared quota: run ${runId} was halted before it crossed`);
      return { ...counter.c, sdkHaltMs: haltSeen.get(runId)! - counter.c.crossingAt, queuedAtCrossing };
    },
    close: () => bw.shutdown(),
  };
}

function runawayOtel(otlpUrl: string, settings: { scheduledDelayMillis?: number; maxExportBatchSize?: number }): Runaway {
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url: `${otlpUrl}/v1/traces` }), {
    ...(settings.scheduledDelayMillis !== undefined ? { scheduledDelayMillis: settings.scheduledDelayMillis } : {}),
    ...(settings.maxExportBatchSize !== undefined ? { maxExportBatchSize: settings.maxExportBatchSize } : {}),
  });
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'plain-agent', [ATTR.tenantId]: RUNAWAY_TENANT }), spanProcessors: [processor] });
  const tracer = provider.getTracer('plain-agent');
  return {
    async run(runId, providerUrl, halts) {
      const counter = crossingCounter();
      const began = performance.now();
      // It cannot read decisions: it runs until Breakwater's HALT exists, which it never learns of.
      await tracer.startActiveSpan('invoke_agent runaway', { attributes: { [ATTR.runId]: runId, [ATTR.operation]: 'invoke_agent' } }, async (root) => {
        while (!halts.has(runId) && performance.now() - began < PLAIN_RUN_CAP_MS) {
          counter.add(await tryModel(() => plainModelCall(tracer, runId, () => callModel(providerUrl, RUNAWAY_TENANT, RUNAWAY_INPUT, RUNAWAY_OUTPUT))));
          await tracer.startActiveSpan('execute_tool act', { attributes: { [ATTR.runId]: runId, [ATTR.operation]: 'execute_tool', [ATTR.toolName]: 'act' } }, async (span) => {
            await toolWork();
            span.end();
          });
        }
        root.end();
      });
      if (!counter.crossed()) throw new Error(`shared quota: plain run ${runId} never crossed`);
      return counter.c;
    },
    close: () => provider.shutdown(),
  };
}

/** A model call span as a hand-instrumented agent makes one: GenAI attributes and the run id. */
async function plainModelCall(tracer: Tracer, runId: string, call: () => Promise<ModelAnswer>): Promise<ModelAnswer> {
  const attributes = { [ATTR.runId]: runId, [ATTR.operation]: 'chat', [ATTR.provider]: 'mock', [ATTR.requestModel]: 'big-model' };
  return tracer.startActiveSpan('chat big-model', { kind: SpanKind.CLIENT, attributes }, async (span) => {
    try {
      const usage = await call();
      span.setAttributes({ [ATTR.inputTokens]: usage.inputTokens, [ATTR.outputTokens]: usage.outputTokens });
      return usage;
    } catch (err) {
      span.setAttributes({ [ATTR.errorType]: '429', [ATTR.httpStatusCode]: 429 });
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** A steady tenant: runs of ten small steps, one every STEADY_STEP_MS, until told to stop. */
async function steadyTenant(bw: Breakwater, tenant: string, providerUrl: string, stopping: () => boolean): Promise<void> {
  for (let r = 0; !stopping(); r++) {
    await bw.run(`${tenant}-${r}`, async () => {
      for (let step = 0; step < STEADY_STEPS_PER_RUN && !stopping(); step++) {
        await bw.checkpoint();
        await tryModel(() => bw.modelCall({ provider: 'mock', model: 'small-model' }, () => callModel(providerUrl, tenant, STEADY_INPUT, STEADY_OUTPUT)));
        await bw.toolCall('lookup', () => sleep(5));
        await sleep(STEADY_STEP_MS);
      }
    });
  }
}
