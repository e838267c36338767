// Agents that trip their run's breaker, one after another, in a process of their own (as agents
// run: their SDK work does not share the service's event loop). For each run the service records
// when the threshold-crossing batch arrived; this process says when the SDK's cache held HALT for
// the run. The two clocks are joined by the offset a few IPC round trips measure (the one with the
// shortest round trip: its midpoint is the closest to the child's reading).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Breakwater, BreakwaterHaltError } from '../src/sdk/index.js';
import { silentLogger } from '../src/sdk/logger.js';
import type { Service } from '../src/app/service.js';
import { isEntry } from './child.js';

export interface HaltingAgentsSpec {
  otlpUrl: string;
  graphqlUrl: string;
  /** the policy halts this tenant's runs past `toolCallsToTrip` tool calls a minute (and never the tenant) */
  tenant: string;
  toolCallsToTrip: number;
  /** run ids are `${runPrefix}-${n}` */
  runPrefix: string;
  /** runs to make at least; more until told to stop */
  runs: number;
  /**
   * Start a run at most this often (0: each right after the last). Breakers trip rarely in a real
   * fleet; one agent tripping its run every 500 ms still gives a phase twenty samples.
   */
  runEveryMs: number;
}

export interface HaltSample {
  /** the service's performance.now() at the crossing batch's receipt */
  arrivedAt: number;
  /** from then to the SDK's cache holding HALT for the run */
  ms: number;
}

type ToChild = { kind: 'ping'; id: number } | { kind: 'stop' };
type FromChild = { kind: 'ready' } | { kind: 'pong'; id: number; clock: number } | { kind: 'done'; halts: Array<{ runId: string; clock: number }> } | { kind: 'failed'; error: string };

/** Both sides' clocks as ms since the epoch, with performance.now()'s resolution. */
const clock = () => performance.timeOrigin + performance.now();

export interface HaltingAgents {
  /** Tells the agents to stop after their current run; resolves with the halts seen. */
  stop(): Promise<HaltSample[]>;
}

/** Starts the agents' process; resolves once its SDK is connected and the clocks are joined. */
export async function startHaltingAgents(service: Service, spec: HaltingAgentsSpec): Promise<HaltingAgents> {
  const crossing = new Map<string, number>();
  let listening = true;
  service.pipeline.addObserver({
    observe(spans, receivedAt) {
      if (!listening) return;
      for (const span of spans) {
        if (span.tenantId !== spec.tenant || crossing.has(span.runId)) continue;
        if (service.core.bus.latest(spec.tenant, span.runId).action === 'HALT') crossing.set(span.runId, receivedAt);
      }
    },
  });
  const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(spec)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages = messageQueue(child);
  try {
    await messages.next('ready');
    // child clock - parent clock, from the round trip whose midpoint is closest to the reading
    let best = { rtt: Infinity, offset: 0 };
    for (let id = 0; id < 20; id++) {
      const sent = clock();
      child.send({ kind: 'ping', id } satisfies ToChild);
      const pong = await messages.next('pong');
      const received = clock();
      if (received - sent < best.rtt) best = { rtt: received - sent, offset: pong.clock - (sent + received) / 2 };
    }
    // performance.now() of this process at a child's clock reading
    const toParentNow = (childClock: number) => childClock - best.offset - performance.timeOrigin;
    return {
      async stop() {
        child.send({ kind: 'stop' } satisfies ToChild);
        const { halts } = await messages.next('done');
        listening = false;
        const samples: HaltSample[] = [];
        for (const { runId, clock: seenAt } of halts) {
          const arrivedAt = crossing.get(runId);
          if (arrivedAt === undefined) continue;
          const ms = toParentNow(seenAt) - arrivedAt;
          // Seen before it arrived, by more than the clocks' join can be off: the join is wrong.
          if (ms < -best.rtt / 2) throw new Error(`halting agents: run ${runId} saw HALT ${-ms} ms before its crossing batch arrived`);
          samples.push({ arrivedAt, ms });
        }
        return samples;
      },
    };
  } catch (err) {
    listening = false;
    child.kill();
    throw err;
  }
}

/** The child's messages in order; `next(kind)` fails on a message of another kind, a failure, or an exit. */
function messageQueue(child: ChildProcess) {
  const queue: FromChild[] = [];
  let wake: (() => void) | undefined;
  let exited: Error | undefined;
  child.on('message', (m: FromChild) => {
    queue.push(m);
    wake?.();
  });
  child.on('exit', (code) => {
    exited = new Error(`halting agents exited with code ${code}`);
    wake?.();
  });
  return {
    async next<K extends FromChild['kind']>(kind: K): Promise<Extract<FromChild, { kind: K }>> {
      while (queue.length === 0) {
        if (exited) throw exited;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const m = queue.shift()!;
      if (m.kind === 'failed') throw new Error(`halting agents failed: ${m.error}`);
      if (m.kind !== kind) throw new Error(`halting agents: expected ${kind}, got ${m.kind}`);
      return m as Extract<FromChild, { kind: K }>;
    },
  };
}

async function runAgents(spec: HaltingAgentsSpec): Promise<void> {
  const send = (m: FromChild) => process.send!(m);
  let stopping = false;
  process.on('message', (m: ToChild) => {
    if (m.kind === 'ping') send({ kind: 'pong', id: m.id, clock: clock() });
    else stopping = true;
  });
  const bw = await Breakwater.start({
    tenantId: spec.tenant,
    otlpUrl: spec.otlpUrl,
    graphqlUrl: spec.graphqlUrl,
    global: false,
    logger: silentLogger,
  });
  const seen = new Map<string, number>();
  bw.onDecision((d) => {
    if (d.action === 'HALT' && d.runId && !seen.has(d.runId)) seen.set(d.runId, clock());
  });
  send({ kind: 'ready' });
  const started = performance.now();
  for (let r = 0; r < spec.runs || !stopping; r++) {
    const wait = started + r * spec.runEveryMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    try {
      await bw.run(`${spec.runPrefix}-${r}`, async () => {
        for (let i = 0; i < spec.toolCallsToTrip * 20; i++) {
          await bw.checkpoint();
          await bw.toolCall('loop', () => undefined);
          if (i % spec.toolCallsToTrip === 0) await bw.flush();
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
    } catch (err) {
      if (!(err instanceof BreakwaterHaltError)) throw err;
    }
  }
  await bw.shutdown();
  send({ kind: 'done', halts: [...seen].map(([runId, at]) => ({ runId, clock: at })) });
  process.disconnect();
}

if (isEntry(import.meta.url)) {
  runAgents(JSON.parse(process.argv[2]!) as HaltingAgentsSpec).catch((err: unknown) => {
    process.send?.({ kind: 'failed', error: String((err as Error).stack ?? err) } satisfies FromChild);
    process.exitCode = 1;
    process.disconnect();
  });
}
