// shutdown() with Breakwater down: the README's agent ends with `await bw.shutdown()`, which must not
// reject in failMode 'open' (the losses are counted and logged), nor, as docs/sdk.md says, in 'closed'.

import { afterAll, expect, it } from 'vitest';
import { Breakwater, type FailMode } from '../../src/sdk/index.js';
import { memoryLogger } from './test-support.js';

// Nothing listens on the discard port: every connection is refused.
const DOWN = 'http://127.0.0.1:9';
const instances: Breakwater[] = [];

afterAll(async () => {
  await Promise.allSettled(instances.map((bw) => bw.shutdown()));
});

async function runWhileDown(failMode: FailMode, global: boolean) {
  const logger = memoryLogger();
  const bw = await Breakwater.start({ tenantId: `down-${failMode}`, otlpUrl: DOWN, graphqlUrl: DOWN, failMode, global, logger, connectTimeoutMs: 200 });
  instances.push(bw);
  if (failMode === 'open') await bw.run('r', async () => {
    await bw.checkpoint();
    await bw.toolCall('search', async () => 'result');
  });
  else await bw.run('r', () => bw.toolCall('search', async () => 'result'));
  const outcome = await bw.shutdown().then(
    () => 'resolved',
    (err: unknown) => `rejected: ${String(err)}`,
  );
  return { outcome, exports: bw.status().exports, logger };
}

it('resolves in both fail modes, with the lost spans counted and logged', async () => {
  // The NodeSDK path (global, the README's) and a provider of the instance's own, side by side.
  const [open, closed] = await Promise.all([runWhileDown('open', true), runWhileDown('closed', false)]);
  for (const result of [open, closed]) {
    expect(result.outcome).toBe('resolved');
    expect(result.exports?.exported).toBe(0);
    expect(result.exports?.failed).toBeGreaterThan(0);
    expect(result.logger.lines.some((line) => line.message === 'spans lost toward Breakwater since start')).toBe(true);
  }
  expect(open.exports?.failed).toBe(2);
});
