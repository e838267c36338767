import { afterAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

// A restart (a deploy, a crash) must not hand a runaway a fresh budget: a live run's step count,
// cost and duration, and its tenant's trips and escalation, carry on in the new process.

const dir = tempDataDir('bw-restart-run-');
// $0.15 a call (1,000 input and 500 output tokens at $100 per million): the free tier's $1 run
// cost cap is crossed at the seventh call. Its $0.50 a minute is raised, or the burst halts first.
const policyFile = writePolicy(dir, 'prices:\n  pricey-model: { input: 100, output: 100 }\ntiers:\n  free:\n    run: { costPerMinuteUsd: 100 }\n    tenant: { costPerMinuteUsd: 100 }\n');
let service: Service | undefined;

afterAll(async () => {
  await service?.stop();
});

const calls = (n: number) => Array.from({ length: n }, () => ({ model: 'pricey-model', inputTokens: 1_000, outputTokens: 500 }));
const tools = (n: number) => Array.from({ length: n }, () => ({ tool: 'search' }));

describe('a restart mid-run', () => {
  it('carries the run’s step count, cost and duration on, so the cost cap halts it across the restart', async () => {
    service = await startTestService({ dataDir: dir, policyFile });
    const odd = [
      // an errored tool call, a 429 (quota, not an error call), and an agent span whose tokens are a roll-up
      { tool: 'flaky', error: true },
      { model: 'pricey-model', inputTokens: 0, outputTokens: 0, attributes: { 'http.response.status_code': 429, 'error.type': '429' } },
      { tool: 'x', attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.usage.input_tokens': 9_999, 'gen_ai.usage.output_tokens': 9_999, 'agent.depth': 2 } },
    ];
    expect((await postSpans(service.otlpUrl, runSteps('resumed', 'run-1', [...calls(4), ...tools(19), ...odd]))).status).toBe(200);
    const liveDetails = service.core.windows.runDetails('resumed', 'run-1')!;
    const before = service.core.windows.runMetrics('resumed', 'run-1')!;
    expect(before.stepCount).toBe(25);
    expect(before.costUsd).toBeCloseTo(0.6, 9);
    expect(service.core.bus.latest('resumed', 'run-1').action).not.toBe('HALT');
    await service.stop();

    service = await startTestService({ dataDir: dir, policyFile });
    const after = service.core.windows.runMetrics('resumed', 'run-1')!;
    // Resumed from ClickHouse by the same definitions the live path counted with.
    const resumedDetails = service.core.windows.runDetails('resumed', 'run-1')!;
    for (const field of ['spanCount', 'stepCount', 'modelCalls', 'toolCalls', 'errorCalls', 'inputTokens', 'outputTokens', 'subAgentDepth'] as const) {
      expect(resumedDetails[field], field).toBe(liveDetails[field]);
    }
    expect(resumedDetails.costUsd).toBeCloseTo(liveDetails.costUsd, 9);
    expect(after.stepCount).toBe(25);
    expect(after.costUsd).toBeCloseTo(0.6, 9);
    expect(after.durationSeconds).toBeCloseTo(before.durationSeconds, 2);
    // Rolling rates start empty: the last minute's calls are not replayed.
    expect(after.toolCallsPerMinute).toBe(0);
    expect(service.core.windows.tenantMetrics('resumed')!.costUsd).toBeCloseTo(0.6, 9);

    expect((await postSpans(service.otlpUrl, runSteps('resumed', 'run-1', calls(3)))).status).toBe(200);
    expect(service.core.windows.runMetrics('resumed', 'run-1')!.costUsd).toBeCloseTo(1.05, 9);
    expect(service.core.bus.latest('resumed', 'run-1')).toMatchObject({ action: 'HALT', metric: 'costUsd' });
  });

  it('keeps a tenant’s trips of the last hour and its unacknowledged escalation', async () => {
    // Three runs over the free tier's 30 tool calls a minute: three trips escalate.
    for (let r = 0; r < 3; r++) expect((await postSpans(service!.otlpUrl, runSteps('escalating', `loop-${r}`, tools(31)))).status).toBe(200);
    expect(service!.core.engine.isEscalated('escalating')).toBe(true);
    const trips = service!.core.engine.recentTrips('escalating', 60);
    expect(trips).toBeGreaterThanOrEqual(3);
    await service!.stop();

    service = await startTestService({ dataDir: dir, policyFile });
    expect(service.core.engine.isEscalated('escalating')).toBe(true);
    expect(service.core.engine.recentTrips('escalating', 60)).toBe(trips);
    await service.core.engine.acknowledgeEscalation('escalating', 'alice', 'looked at it');
    await service.stop();

    service = await startTestService({ dataDir: dir, policyFile });
    expect(service.core.engine.isEscalated('escalating')).toBe(false);
    expect(service.core.engine.recentTrips('escalating', 60)).toBe(0);
  });
});
