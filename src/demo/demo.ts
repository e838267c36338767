// `breakwater demo`: Breakwater in-process on a throwaway embedded store, simulated agents of four
// tenants on three tiers sending real OTLP through the SDK and obeying a real decisions
// subscription, one of them stuck in a tool-call loop. Live table from the GraphQL API, then the
// halt, a summary and queries to try. Exit code 0 only when exactly the runaway tenant was halted.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../app/config.js';
import type { Logger } from '../app/log.js';
import { Breakwater, type SdkLogger } from '../sdk/index.js';
import { startService, type Service } from '../app/service.js';
import { emptyStats, normalAgent, runawayAgent, type AgentContext, type HaltRecord, type TenantStats } from './agents.js';
import { fetchTenants, renderTable, type TenantRow } from './dashboard.js';
import { AGENT_RUN_MS, DEMO_POLICY, HALT_DEADLINE_MS, RUNAWAY_TENANT, TENANTS } from './scenario.js';

export interface DemoOptions {
  /** keep Breakwater serving after the demo until SIGINT / SIGTERM */
  keepRunning?: boolean;
  out?: NodeJS.WriteStream;
}

export const DEMO_USAGE = `breakwater demo [--keep-running]

Starts Breakwater in-process (embedded ClickHouse in a temporary directory, ephemeral ports), runs
simulated agents for four tenants (free, pro, enterprise) through breakwater/sdk over real OTLP and
a real decisions subscription, and makes one tenant's agent run away in a tool-call loop.
Exits 0 when exactly that tenant was halted.

  --keep-running   afterwards, keep Breakwater up on the default ports (127.0.0.1:4318, :4000 and
                   :4001; BREAKWATER_HOST and BREAKWATER_*_PORT change them) with
                   the other tenants' agents still sending, until Ctrl-C or SIGTERM
`;

export function parseDemoArgs(argv: readonly string[]): DemoOptions | string {
  const options: DemoOptions = {};
  for (const arg of argv) {
    if (arg === '--keep-running') options.keepRunning = true;
    else return `unknown demo flag ${JSON.stringify(arg)}\n\n${DEMO_USAGE}`;
  }
  return options;
}

const REFRESH_MS = 500;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runDemo(options: DemoOptions = {}): Promise<number> {
  const out = options.out ?? process.stdout;
  const tty = out.isTTY === true;
  const started = Date.now();
  const elapsed = () => ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-demo-'));
  const policyFile = join(dir, 'breakwater.yaml');
  writeFileSync(policyFile, DEMO_POLICY);

  const events: string[] = [];
  const event = (line: string) => {
    const stamped = `[${elapsed()} s] ${line}`;
    events.push(stamped);
    if (!tty) out.write(`${stamped}\n`);
  };

  // Breakwater's own logs go to stderr, so the table on stdout stays readable.
  const log: Logger = pino({ level: 'warn', base: { service: 'breakwater' } }, pino.destination(2));
  // Kept running, it listens where the docs' examples point (the default ports, or BREAKWATER_HOST /
  // BREAKWATER_OTLP_PORT / BREAKWATER_GRAPHQL_PORT / BREAKWATER_GATEWAY_PORT); a demo that ends takes ephemeral ones.
  const where = options.keepRunning ? listenerEnv(process.env) : {};
  const ports = options.keepRunning ? [] : ['--otlp-port', '0', '--graphql-port', '0', '--gateway-port', '0'];
  const config = loadConfig([...ports, '--log-level', 'warn', '--data-dir', join(dir, 'data'), '--config', policyFile], where);
  let service: Service | undefined;
  const instances: Breakwater[] = [];
  try {
    service = await startService(config, log);
    const { otlpUrl, graphqlUrl } = service;
    out.write(`Breakwater demo: OTLP ${otlpUrl}/v1/traces, GraphQL ${graphqlUrl}/graphql, policy ${policyFile}\n`);
    out.write(`Tenants: ${TENANTS.map((t) => `${t.id} (${t.tier})`).join(', ')}. ${RUNAWAY_TENANT}'s ticket-bot will loop on a tool.\n\n`);

    const stats = new Map<string, TenantStats>(TENANTS.map((t) => [t.id, emptyStats()]));
    const halts: HaltRecord[] = [];
    const progress = new Map<string, number>();
    const agentOfRun = new Map<string, string>();
    let stopping = false;

    const contexts: AgentContext[] = [];
    for (const tenant of TENANTS) {
      const tenantStats = stats.get(tenant.id)!;
      const sdkLog: SdkLogger = {
        info: (m) => event(`${tenant.id} sdk: ${m}`),
        warn: (m, f) => event(`${tenant.id} sdk: ${m}${f?.reason ? ` (${String(f.reason)})` : ''}`),
        error: (m, f) => event(`${tenant.id} sdk error: ${m}${f?.error ? ` (${String(f.error)})` : ''}`),
      };
      const bw = await Breakwater.start({
        tenantId: tenant.id,
        otlpUrl,
        graphqlUrl,
        serviceName: `${tenant.id}-agents`,
        // Several tenants in one process: a tracer provider per instance, not the global one.
        global: false,
        failMode: 'open',
        logger: sdkLog,
        onHalt: async (decision, error) => {
          // The application's chance to save state before the run stops.
          const runId = error.runId ?? '';
          const agent = agentOfRun.get(runId) ?? '';
          const record: HaltRecord = { tenantId: tenant.id, agent, runId, error, savedAtStep: progress.get(runId) ?? 0 };
          halts.push(record);
          tenantStats.halts.push(record);
          event(`HALT ${tenant.id} run ${runId}: ${decision.reason} (agent saved its state at step ${record.savedAtStep})`);
        },
        onWarn: (decision) => {
          tenantStats.warnings++;
          event(`WARN ${tenant.id}${decision.runId ? ` run ${decision.runId}` : ''}: ${decision.reason}`);
        },
      });
      instances.push(bw);
      contexts.push({ bw, tenant, stats: tenantStats, stopping: () => stopping, event, progress, agentOfRun });
    }
    const notConnected = instances.filter((bw) => !bw.status().connected).map((bw) => bw.tenantId);
    if (notConnected.length > 0) event(`not connected yet: ${notConnected.join(', ')}`);

    const agents: Promise<void>[] = [];
    for (const ctx of contexts) {
      for (const agent of ctx.tenant.agents) {
        const loop = agent.runawayAfterMs === undefined ? normalAgent(ctx, agent) : runawayAgent(ctx, agent);
        agents.push(
          loop.catch((err: unknown) => {
            event(`${ctx.tenant.id}/${agent.name} failed: ${err instanceof Error ? err.message : String(err)}`);
            throw err;
          }),
        );
      }
    }

    // Live view until the runaway has been halted and the others have run on for a while.
    let rows: TenantRow[] = [];
    let drawnLines = 0;
    let tick = 0;
    const draw = (final = false) => {
      const table = renderTable(rows, stats, tty);
      if (tty) {
        const width = Math.max(20, out.columns ?? 120);
        const frame = [`Breakwater demo  t=${elapsed()} s${final ? '  (done)' : ''}`, ...table, '', ...events.slice(-8)];
        // Back to the top of the previous frame (counting the terminal rows its long lines wrapped to).
        if (drawnLines > 0) out.write(`\x1b[${drawnLines}F\x1b[0J`);
        out.write(`${frame.join('\n')}\n`);
        drawnLines = frame.reduce((rows, line) => rows + Math.max(1, Math.ceil(visibleLength(line) / width)), 0);
      } else if (final || tick % 4 === 0) {
        out.write(`t=${elapsed()} s\n${table.join('\n')}\n\n`);
      }
    };
    let haltAt: number | undefined;
    for (;;) {
      rows = await fetchTenants(graphqlUrl).catch(() => rows);
      draw();
      tick++;
      const now = Date.now() - started;
      if (haltAt === undefined && halts.length > 0) haltAt = now;
      if (haltAt !== undefined && now >= AGENT_RUN_MS && now >= haltAt + 4_000) break;
      if (now >= HALT_DEADLINE_MS) {
        event('the runaway was not halted in time');
        break;
      }
      await sleep(REFRESH_MS);
    }

    stopping = true;
    const finished = await Promise.race([Promise.allSettled(agents), sleep(10_000).then(() => undefined)]);
    const agentFailures = finished === undefined ? ['agents did not stop within 10 s'] : finished.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    await Promise.all(instances.map((bw) => bw.flush().catch(() => {})));
    await sleep(300);
    rows = await fetchTenants(graphqlUrl).catch(() => rows);
    draw(true);

    // Verdict, from both ends: what the agents were told, and what Breakwater holds.
    const haltedBySdk = new Set(halts.map((h) => h.tenantId));
    const haltedOnServer = new Set(rows.filter((r) => r.breakers.some((b) => b.decision.action === 'HALT') || r.decision.action === 'HALT').map((r) => r.id));
    const wrongAgent = halts.filter((h) => h.agent !== runawayAgentName());
    const ok =
      agentFailures.length === 0 &&
      sameSet(haltedBySdk, [RUNAWAY_TENANT]) &&
      sameSet(haltedOnServer, [RUNAWAY_TENANT]) &&
      wrongAgent.length === 0;

    out.write(`\n${summary(stats, halts, Date.now() - started)}\n`);
    if (ok) {
      out.write(`RESULT: PASS - exactly ${RUNAWAY_TENANT} was halted (its runaway run only); every other tenant and run went on untouched.\n`);
    } else {
      out.write(
        `RESULT: FAIL - halted by the SDK: [${[...haltedBySdk].join(', ')}], halted on the server: [${[...haltedOnServer].join(', ')}], expected [${RUNAWAY_TENANT}]${wrongAgent.length ? `; non-runaway runs halted: ${wrongAgent.map((h) => h.runId).join(', ')}` : ''}${agentFailures.length ? `; agent failures: ${agentFailures.join('; ')}` : ''}\n`,
      );
    }
    out.write(`\n${queriesToTry(graphqlUrl, halts[0]?.runId, options.keepRunning === true)}\n`);

    if (options.keepRunning) {
      // The other tenants' agents go on, so there is live traffic to look at.
      stopping = false;
      const ongoing = contexts.flatMap((ctx) => ctx.tenant.agents.filter((a) => a.runawayAfterMs === undefined).map((a) => normalAgent(ctx, a).catch(() => {})));
      out.write(`\nBreakwater keeps running, the other tenants' agents too: GraphiQL at ${graphqlUrl}/graphql, OTLP at ${otlpUrl}/v1/traces. Ctrl-C to stop.\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      stopping = true;
      await Promise.race([Promise.allSettled(ongoing), sleep(10_000)]);
    }
    await Promise.all(instances.splice(0).map((bw) => bw.shutdown()));
    return ok ? 0 : 1;
  } finally {
    await Promise.all(instances.map((bw) => bw.shutdown().catch(() => {})));
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function listenerEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of ['BREAKWATER_HOST', 'BREAKWATER_OTLP_PORT', 'BREAKWATER_GRAPHQL_PORT', 'BREAKWATER_GATEWAY_PORT']) if (env[name] !== undefined) picked[name] = env[name];
  return picked;
}

function runawayAgentName(): string {
  const tenant = TENANTS.find((t) => t.id === RUNAWAY_TENANT);
  return tenant?.agents.find((a) => a.runawayAfterMs !== undefined)?.name ?? '';
}

function sameSet(actual: ReadonlySet<string>, expected: readonly string[]): boolean {
  return actual.size === expected.length && expected.every((e) => actual.has(e));
}

function visibleLength(line: string): number {
  // eslint-disable-next-line no-control-regex -- colour escape sequences take no columns
  return line.replace(/\x1b\[[0-9;]*m/g, '').length;
}

function summary(stats: ReadonlyMap<string, TenantStats>, halts: readonly HaltRecord[], ms: number): string {
  const lines = [`Summary after ${(ms / 1000).toFixed(1)} s`];
  for (const tenant of TENANTS) {
    const s = stats.get(tenant.id)!;
    const halted = halts.filter((h) => h.tenantId === tenant.id);
    lines.push(
      `  ${tenant.id.padEnd(9)} ${tenant.tier.padEnd(10)} runs ${String(s.runs).padStart(3)}  steps ${String(s.steps).padStart(4)}  tool calls ${String(s.toolCalls).padStart(4)}  tokens ${String(s.tokens).padStart(7)}  warnings ${s.warnings}  ${halted.length ? `HALTED: ${halted.map((h) => h.runId).join(', ')}` : 'not halted'}`,
    );
  }
  for (const h of halts) {
    lines.push(
      `  halt of ${h.tenantId} run ${h.runId}: ${h.error.reason} (metric ${h.error.metric}, observed ${h.error.observed}, threshold ${h.error.threshold}, retry after ${h.error.retryAfterMs} ms)`,
    );
  }
  return lines.join('\n');
}

function queriesToTry(graphqlUrl: string, runawayRunId: string | undefined, live: boolean): string {
  const url = live ? `${graphqlUrl}/graphql` : 'http://127.0.0.1:4000/graphql (after `breakwater serve`, or run `breakwater demo --keep-running`)';
  const run = runawayRunId ?? '<run id>';
  return [
    `GraphQL queries to try at ${url}:`,
    `  { tenants(sort: TOKEN_VELOCITY) { edges { node { id policy { tier } metrics { tokenVelocity60s toolCallsPerMinute costUsd } decision { action state } } } } }`,
    `  { tenant(id: "${RUNAWAY_TENANT}") { breakers { scope runId state decision { action reason metric observed threshold retryAfterMs } } auditEvents(first: 5) { kind runId oldState newState reason } } }`,
    `  { tenant(id: "${RUNAWAY_TENANT}") { timeseries(metric: TOOL_CALLS, last: "15m") { time value } costAttribution(last: "1h") { model calls costUsd } } }`,
    `  { run(tenantId: "${RUNAWAY_TENANT}", runId: "${run}") { metrics { toolCallsPerMinute stepCount } steps(first: 5) { name toolName } decision { action reason } } }`,
    `  subscription { decisions(tenantId: "${RUNAWAY_TENANT}") { runId action state reason retryAfterMs } }`,
    `  mutation { resetBreaker(tenantId: "${RUNAWAY_TENANT}", runId: "${run}") { state decision { action } } }`,
  ].join('\n');
}
