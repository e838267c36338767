// Local decisions as Breakwater wires them, against a stand-in decisions server and OTLP receiver
// that answer on demand: which server decisions lift a local HALT depends on whether the receiver
// has accepted the crossing span yet, and without the server's thresholds nothing is decided.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Breakwater, BreakwaterHaltError, type Decision, type StartOptions } from '../../src/sdk/index.js';
import { decision, FakeDecisionServer } from './fake-decisions.js';
import { OtlpSink } from './otlp-sink.js';
import { memoryLogger, waitUntil } from './test-support.js';

let decisions: FakeDecisionServer;
let sink: OtlpSink;
const instances: Breakwater[] = [];
let tenantCounter = 0;

beforeAll(async () => {
  decisions = await FakeDecisionServer.start();
  sink = await OtlpSink.start();
});

afterEach(async () => {
  await Promise.all(instances.splice(0).map((bw) => bw.shutdown()));
});

afterAll(async () => {
  await sink.close();
  await decisions.close();
});

async function start(tenantId: string, options: Partial<StartOptions> = {}) {
  const logger = memoryLogger();
  const bw = await Breakwater.start({ tenantId, otlpUrl: sink.url, graphqlUrl: decisions.url, global: false, logger, onHalt: () => {}, ...options });
  instances.push(bw);
  return Object.assign(bw, { logger });
}

/** Three tool calls with no turn of the event loop between them, then a checkpoint. */
async function threeStepsThenCheckpoint(bw: Breakwater, runId: string): Promise<unknown> {
  return bw.run(runId, async () => {
    for (let i = 0; i < 3; i++) await bw.toolCall('search', () => 'result');
    return bw.checkpoint().catch((err: unknown) => err);
  });
}

describe('local decisions through Breakwater', () => {
  it("a CLOSED WARN before the receiver accepted the crossing span keeps the local HALT; a reset after it lifts it", async () => {
    const tenantId = `prec-${++tenantCounter}`;
    decisions.policies.set(tenantId, { run: { stepCount: 2 }, warnFraction: 0.5, breaker: { cooldownMs: 60_000 } });
    sink.reset({ holdMs: 400 });
    const bw = await start(tenantId);
    const heard: Decision[] = [];
    bw.onDecision((d) => heard.push(d));

    const outcome = await threeStepsThenCheckpoint(bw, 'r1');
    expect(outcome).toBeInstanceOf(BreakwaterHaltError);
    expect((outcome as BreakwaterHaltError).decision).toMatchObject({ source: 'local', metric: 'stepCount', observed: 3 });

    // Issued before the server saw step 3 (its export is still held): it does not lift the HALT.
    decisions.push(decision({ tenantId, runId: 'r1', action: 'WARN', metric: 'stepCount', threshold: 2, observed: 2 }));
    await waitUntil(() => heard.some((d) => d.action === 'WARN'), 2_000, 'the WARN');
    expect(sink.requests.every((r) => r.answeredAt === undefined)).toBe(true);
    expect(bw.currentDecision('r1')).toMatchObject({ action: 'HALT', source: 'local' });

    // Once the receiver accepted it, the server's later ALLOW (a reset) wins.
    await bw.flush();
    decisions.push(decision({ tenantId, runId: 'r1', reason: 'reset by operator' }));
    await waitUntil(() => heard.some((d) => d.reason === 'reset by operator'), 2_000, 'the reset');
    await expect(bw.checkpoint({ runId: 'r1' })).resolves.toMatchObject({ action: 'ALLOW' });
  });

  it("decides nothing locally when the server's thresholds cannot be read", async () => {
    const tenantId = `prec-${++tenantCounter}`;
    decisions.policies.set(tenantId, 'refuse');
    sink.reset();
    const bw = await start(tenantId);
    expect(bw.status().localDecisions).toBe(false);
    expect(bw.logger.lines.filter((l) => l.message.startsWith('no local decisions'))).toHaveLength(1);
    await expect(threeStepsThenCheckpoint(bw, 'r1')).resolves.toMatchObject({ action: 'ALLOW' });
  });
});
