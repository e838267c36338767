// Simulated agents: model and tool calls are sleeps with plausible token counts, but every span goes
// through the SDK, over real OTLP, and every step obeys checkpoint().

import { randomBytes } from 'node:crypto';
import { Breakwater, BreakwaterHaltError } from '../sdk/index.js';
import type { AgentSpec, TenantSpec } from './scenario.js';

export interface HaltRecord {
  tenantId: string;
  agent: string;
  runId: string;
  error: BreakwaterHaltError;
  /** the step the agent had reached when it saved its state in onHalt */
  savedAtStep: number;
}

export interface TenantStats {
  runs: number;
  steps: number;
  toolCalls: number;
  tokens: number;
  halts: HaltRecord[];
  warnings: number;
  degradedSteps: number;
}

export function emptyStats(): TenantStats {
  return { runs: 0, steps: 0, toolCalls: 0, tokens: 0, halts: [], warnings: 0, degradedSteps: 0 };
}

const TOOLS = ['kb.search', 'crm.lookup', 'calendar.find_slot', 'web.fetch', 'tickets.update'];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const between = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));
const shortId = () => randomBytes(2).toString('hex');

export interface AgentContext {
  bw: Breakwater;
  tenant: TenantSpec;
  stats: TenantStats;
  stopping: () => boolean;
  event: (line: string) => void;
  /** the step each run reached, read by onHalt to "save state" */
  progress: Map<string, number>;
  /** run id -> the agent running it */
  agentOfRun: Map<string, string>;
}

/** A well-behaved agent: short runs of model calls with some tool calls and the odd sub-agent. */
export async function normalAgent(ctx: AgentContext, agent: AgentSpec): Promise<void> {
  const { bw, tenant, stats } = ctx;
  let n = 0;
  while (!ctx.stopping()) {
    const runId = `${agent.name}-${++n}-${shortId()}`;
    ctx.agentOfRun.set(runId, agent.name);
    try {
      await bw.run({ runId, agentName: agent.name }, async () => {
        const steps = between(5, 9);
        for (let step = 1; step <= steps && !ctx.stopping(); step++) {
          ctx.progress.set(runId, step);
          const { model, degraded } = await bw.checkpoint({ model: tenant.model });
          if (degraded) stats.degradedSteps++;
          await simulatedModelCall(ctx, model ?? tenant.model);
          stats.steps++;
          if (Math.random() < 0.6) {
            await bw.toolCall(TOOLS[between(0, TOOLS.length - 1)] ?? 'kb.search', () => sleep(between(30, 120)));
            stats.toolCalls++;
            stats.steps++;
          }
          if (agent.subAgents && step === 3) {
            await bw.subAgent('researcher', async () => {
              await simulatedModelCall(ctx, tenant.model);
              await bw.toolCall('web.fetch', () => sleep(between(30, 80)));
              stats.toolCalls++;
              stats.steps += 2;
            });
          }
          await sleep(between(250, 600));
        }
      });
      stats.runs++;
    } catch (err) {
      if (!(err instanceof BreakwaterHaltError)) throw err;
      // A halted run stops; this agent does not start another.
      return;
    }
  }
}

/** The agent that goes wrong: the same search, over and over, as fast as the tool answers. */
export async function runawayAgent(ctx: AgentContext, agent: AgentSpec): Promise<void> {
  const { bw, stats } = ctx;
  await sleep(agent.runawayAfterMs ?? 0);
  if (ctx.stopping()) return;
  const runId = `${agent.name}-loop-${shortId()}`;
  ctx.agentOfRun.set(runId, agent.name);
  ctx.event(`${ctx.tenant.id}/${agent.name}: run ${runId} is stuck calling kb.search in a loop`);
  try {
    await bw.run({ runId, agentName: agent.name }, async () => {
      await simulatedModelCall(ctx, ctx.tenant.model);
      for (let step = 1; !ctx.stopping(); step++) {
        ctx.progress.set(runId, step);
        await bw.checkpoint();
        await bw.toolCall('kb.search', () => sleep(15), { attributes: { 'demo.query': 'how do I reset my password' } });
        stats.toolCalls++;
        stats.steps++;
      }
    });
    stats.runs++;
  } catch (err) {
    if (!(err instanceof BreakwaterHaltError)) throw err;
  }
}

async function simulatedModelCall(ctx: AgentContext, model: string): Promise<void> {
  const { bw, tenant, stats } = ctx;
  await bw.modelCall({ provider: tenant.provider, model }, async () => {
    await sleep(between(120, 380));
    const inputTokens = between(400, 1_600);
    const outputTokens = between(40, 320);
    stats.tokens += inputTokens + outputTokens;
    return { inputTokens, outputTokens, responseModel: model, finishReasons: ['stop'] };
  });
}
