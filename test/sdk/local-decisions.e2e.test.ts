// Local decisions against a real Breakwater: the SDK reads its tenant's run thresholds over the
// API, halts a runaway at the very step it crosses (the agent's steps leave the event loop no
// turn, so no server decision can arrive in between), and the server's HALT on the same spans,
// arriving later, matches it; an operator's reset on the server then wins over the local HALT.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { Breakwater, BreakwaterHaltError, type Decision, type StartOptions } from '../../src/sdk/index.js';
import { silentLogger } from '../../src/sdk/logger.js';
import { gql } from '../helpers/graphql.js';
import { startWithPolicy } from '../helpers/service.js';
import { waitUntil } from './test-support.js';

const TENANTS = ['local-a', 'local-off'] as const;
const ADMIN = 'admin-token-local-0123456789';
const apiToken = (t: string) => `${t}-api-token-0123456789`;
const ingestKey = (t: string) => `${t}-ingest-key-0123456789`;
const MAX_STEPS = 10;

const POLICY = `
tiers:
  free:
    run: { stepCount: ${MAX_STEPS} }
    breaker: { cooldownMs: 600000, maxCooldownMs: 600000 }
tenants:
  local-a: { tier: free }
  local-off: { tier: free }
auth:
  adminTokens: ['${ADMIN}']
  tenants:
${TENANTS.map((t) => `    ${t}: { apiTokens: ['${apiToken(t)}'], ingestKeys: ['${ingestKey(t)}'] }`).join('\n')}
`;

let service: Service;
const instances: Breakwater[] = [];

beforeAll(async () => {
  service = await startWithPolicy(POLICY);
});

afterAll(async () => {
  await Promise.all(instances.map((bw) => bw.shutdown()));
  await service?.stop();
});

async function start(tenantId: string, options: Partial<StartOptions> = {}): Promise<Breakwater> {
  const bw = await Breakwater.start({
    tenantId,
    otlpUrl: service.otlpUrl,
    graphqlUrl: service.graphqlUrl,
    ingestKey: ingestKey(tenantId),
    apiToken: apiToken(tenantId),
    global: false,
    logger: silentLogger,
    ...options,
  });
  instances.push(bw);
  return bw;
}

/** A runaway: checkpoint, then a tool call that returns at once, up to `limit` steps; returns the steps done. */
async function runaway(bw: Breakwater, runId: string, limit: number): Promise<{ steps: number; error: unknown }> {
  let steps = 0;
  try {
    await bw.run(runId, async () => {
      for (let i = 0; i < limit; i++) {
        await bw.checkpoint();
        await bw.toolCall('search', () => 'result');
        steps++;
      }
    });
  } catch (error) {
    return { steps, error };
  }
  return { steps, error: undefined };
}

describe('local decisions', () => {
  it('halt a runaway at the step that crosses, and the server later halts it on the same crossing', async () => {
    const halts: Decision[] = [];
    const bw = await start('local-a', { onHalt: (decision) => void halts.push(decision) });
    expect(bw.status().localDecisions).toBe(true);
    const decisions: Decision[] = [];
    bw.onDecision((d) => decisions.push(d));

    const { steps, error } = await runaway(bw, 'runaway-1', 200);

    // Step 11 crossed stepCount 10: the checkpoint before step 12 halted, 0 extra steps.
    expect(steps).toBe(MAX_STEPS + 1);
    expect(error).toBeInstanceOf(BreakwaterHaltError);
    expect(halts).toHaveLength(1);
    expect(halts[0]).toMatchObject({ action: 'HALT', runId: 'runaway-1', metric: 'stepCount', threshold: MAX_STEPS, observed: MAX_STEPS + 1, source: 'local' });

    // The server's own HALT, on the spans the SDK exported, is the same decision.
    await waitUntil(() => decisions.some((d) => d.runId === 'runaway-1' && d.action === 'HALT' && d.source === undefined), 10_000, "the server's HALT");
    const server = decisions.find((d) => d.runId === 'runaway-1' && d.action === 'HALT' && d.source === undefined)!;
    expect(server).toMatchObject({ state: 'OPEN', metric: 'stepCount', threshold: MAX_STEPS, observed: MAX_STEPS + 1 });
    expect(bw.currentDecision('runaway-1')).toMatchObject({ action: 'HALT', sequence: server.sequence });
    expect(bw.currentDecision('runaway-1').source).toBeUndefined();

    // The server wins: an operator's reset lifts the HALT at the next checkpoint.
    const reset = await gql(service.graphqlUrl, 'mutation($t: String!, $r: String) { resetBreaker(tenantId: $t, runId: $r) { state } }', { t: 'local-a', r: 'runaway-1' }, ADMIN);
    expect(reset.errors).toBeUndefined();
    await waitUntil(() => bw.currentDecision('runaway-1').action === 'ALLOW', 10_000, 'the reset');
    await expect(bw.checkpoint({ runId: 'runaway-1' })).resolves.toMatchObject({ action: 'ALLOW' });
  });

  it('with localDecisions: false, the same runaway runs on until the server is heard', async () => {
    const bw = await start('local-off', { localDecisions: false });
    expect(bw.status().localDecisions).toBe(false);
    const { steps } = await runaway(bw, 'runaway-off', 60);
    // No step yields to the event loop, so no server decision arrives before the run is over.
    expect(steps).toBe(60);
    await waitUntil(() => bw.currentDecision('runaway-off').action === 'HALT', 10_000, "the server's HALT");
    expect(bw.currentDecision('runaway-off')).toMatchObject({ metric: 'stepCount', threshold: MAX_STEPS });
  });
});
