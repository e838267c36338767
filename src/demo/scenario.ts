// What the demo runs: four tenants on three tiers, their agents, and the one that runs away.

export interface AgentSpec {
  name: string;
  /** spawns a sub-agent in some runs */
  subAgents?: boolean;
  /** this agent gets stuck in a tool-call loop after this many ms */
  runawayAfterMs?: number;
}

export interface TenantSpec {
  id: string;
  tier: 'free' | 'pro' | 'enterprise';
  provider: string;
  model: string;
  agents: AgentSpec[];
}

export const RUNAWAY_TENANT = 'initech';

export const TENANTS: readonly TenantSpec[] = [
  { id: 'acme', tier: 'enterprise', provider: 'anthropic', model: 'claude-sonnet-4-5', agents: [{ name: 'support-bot' }, { name: 'billing-bot', subAgents: true }] },
  { id: 'globex', tier: 'pro', provider: 'openai', model: 'gpt-4o', agents: [{ name: 'research-bot', subAgents: true }] },
  { id: RUNAWAY_TENANT, tier: 'free', provider: 'openai', model: 'gpt-4o-mini', agents: [{ name: 'triage-bot' }, { name: 'ticket-bot', runawayAfterMs: 4_000 }] },
  { id: 'umbrella', tier: 'free', provider: 'openai', model: 'gpt-4o-mini', agents: [{ name: 'faq-bot' }] },
];

/** How long the agents run; the runaway trips a few seconds in, the others keep going after it. */
export const AGENT_RUN_MS = 13_000;
/** The demo fails if the runaway is not halted by then. */
export const HALT_DEADLINE_MS = 30_000;

/**
 * The demo's breakwater.yaml: the built-in tiers with run-level tool-call limits a loop reaches in
 * under a second (free: 30 a minute), while a normal agent making a tool call every second or so
 * stays far below them.
 */
export const DEMO_POLICY = `# Breakwater demo policy (written by \`breakwater demo\`)
defaultTier: free
prices:
  gpt-4o: { input: 2.5, output: 10 }
  gpt-4o-mini: { input: 0.15, output: 0.6 }
  claude-sonnet-4-5: { input: 3, output: 15 }
tiers:
  free:
    warnFraction: 0.8
    run: { toolCallsPerMinute: 30, modelCallsPerMinute: 60, tokenVelocity10s: 5000, tokenVelocity60s: 2500, stepCount: 500, costUsd: 5 }
    tenant: { toolCallsPerMinute: 300, modelCallsPerMinute: 300, tokenVelocity60s: 20000, costPerMinuteUsd: 20 }
  pro:
    warnFraction: 0.8
    run: { toolCallsPerMinute: 120, modelCallsPerMinute: 120, stepCount: 1000 }
  enterprise:
    warnFraction: 0.9
    run: { toolCallsPerMinute: 600, stepCount: 5000 }
tenants:
${TENANTS.map((t) => `  ${t.id}: { tier: ${t.tier} }`).join('\n')}
`;
