// Several GraphQL URLs: when a connection fails the decision subscription moves to the next URL
// (with backoff), keeps the decisions it holds meanwhile, and the next Breakwater's decisions arrive.

import { Socket } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { Breakwater } from '../../src/sdk/index.js';
import { silentLogger } from '../../src/sdk/logger.js';
import { startChildService, type ChildService } from '../helpers/child-service.js';
import { gql } from '../helpers/graphql.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { writePolicy } from '../helpers/spans.js';
import { waitUntil } from './test-support.js';

const POLICY = 'tiers: { free: { run: { toolCallsPerMinute: 1000, stepCount: 1000 } } }\ntenants: { fo-a: { tier: free }, fo-b: { tier: free } }\n';
const DEAD = 'http://127.0.0.1:9';

/** Breaks the server side of every connection on `port`, as a crashed process would (Service.stop waits for open streams). */
function dropServerConnections(port: number): void {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  for (const handle of handles) if (handle instanceof Socket && handle.localPort === port) handle.destroy();
}

let service: Service | undefined;
let child: ChildService | undefined;
const instances: Breakwater[] = [];

afterAll(async () => {
  await Promise.all(instances.map((bw) => bw.shutdown()));
  await service?.stop();
  child?.process.kill('SIGTERM');
  await child?.exited;
});

it('a dead first URL: the subscription moves on and the HALT of the next one arrives', async () => {
  const dataDir = tempDataDir();
  service = await startTestService({ dataDir, policyFile: writePolicy(dataDir, POLICY), policyFileExplicit: true });
  const bw = await Breakwater.start({
    tenantId: 'fo-a',
    otlpUrl: service.otlpUrl,
    graphqlUrl: [DEAD, service.graphqlUrl],
    global: false,
    logger: silentLogger,
    backoff: { initialMs: 50, maxMs: 200 },
  });
  instances.push(bw);
  expect(bw.status().connected).toBe(true);
  expect(bw.status().reconnects).toBeGreaterThanOrEqual(1);
  // The thresholds of local decisions come from the URL that answered.
  expect(bw.status().localDecisions).toBe(true);
  await gql(service.graphqlUrl, 'mutation { forceOpenBreaker(tenantId: "fo-a", reason: "failover check", durationMs: 60000) { state } }');
  await waitUntil(() => bw.currentDecision().action === 'HALT', 5_000, 'HALT over the second URL');
  await expect(bw.run('r1', () => bw.checkpoint())).rejects.toMatchObject({ reason: expect.stringContaining('failover check') });
});

it('the Breakwater in use stops mid-run: the decisions held stay, and the next one takes over', async () => {
  if (service === undefined) throw new Error('the first test starts the service');
  const first = service;
  const second = await startChildService(['--data-dir', tempDataDir(), '--config', writePolicy(tempDataDir(), POLICY)]);
  child = second;
  const bw = await Breakwater.start({
    tenantId: 'fo-b',
    otlpUrl: first.otlpUrl,
    graphqlUrl: `${first.graphqlUrl},${second.graphqlUrl}`,
    global: false,
    logger: silentLogger,
    graceMs: 30_000,
    // Long enough a gap between the two connections to look at what the SDK holds meanwhile.
    backoff: { initialMs: 1_000, maxMs: 1_000 },
  });
  instances.push(bw);
  expect(bw.status().connected).toBe(true);
  await gql(first.graphqlUrl, 'mutation { forceOpenBreaker(tenantId: "fo-b", reason: "held from the first", durationMs: 60000) { state } }');
  await waitUntil(() => bw.currentDecision().action === 'HALT', 5_000, 'HALT from the first');

  const stopping = first.stop();
  dropServerConnections(Number(new URL(first.graphqlUrl).port));
  await stopping;
  service = undefined;
  await waitUntil(() => !bw.status().connected, 5_000, 'disconnect noticed');
  // While it moves on, the decision it held still stands.
  expect(bw.currentDecision()).toMatchObject({ action: 'HALT', reason: expect.stringContaining('held from the first') });

  await waitUntil(() => bw.status().connected, 15_000, 'connected to the second');
  await gql(second.graphqlUrl, 'mutation { forceOpenBreaker(tenantId: "fo-b", reason: "from the second", durationMs: 60000) { state } }');
  await waitUntil(() => bw.currentDecision().reason.includes('from the second'), 5_000, 'HALT from the second');
  await expect(bw.run('r2', () => bw.checkpoint())).rejects.toMatchObject({ reason: expect.stringContaining('from the second') });
});
