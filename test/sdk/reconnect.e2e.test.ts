// The decisions subscription survives a Breakwater restart: the service stops, a new one starts on
// the same data directory and ports, and the SDK reconnects by itself (and its exports resume).

import { Socket } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { Breakwater } from '../../src/sdk/index.js';
import { silentLogger } from '../../src/sdk/logger.js';
import { gql } from '../helpers/graphql.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { writePolicy } from '../helpers/spans.js';
import { waitUntil } from './test-support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Breaks the server side of every connection on `port`, as a crashed process would. Needed because
 * Service.stop() waits for open SSE responses to end, and a subscription never ends by itself.
 */
function dropServerConnections(port: number): void {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  for (const handle of handles) if (handle instanceof Socket && handle.localPort === port) handle.destroy();
}

let service: Service | undefined;
let bw: Breakwater | undefined;

afterAll(async () => {
  await bw?.shutdown();
  await service?.stop();
});

it('reconnects after the server restarts, with the restored decisions, and exports resume', async () => {
  const dataDir = tempDataDir();
  const policyFile = writePolicy(dataDir, 'tiers: { free: { run: { toolCallsPerMinute: 1000 } } }\n');
  service = await startTestService({ dataDir, policyFile, policyFileExplicit: true });
  const otlpPort = Number(new URL(service.otlpUrl).port);
  const graphqlPort = Number(new URL(service.graphqlUrl).port);

  bw = await Breakwater.start({
    tenantId: 'rc',
    otlpUrl: service.otlpUrl,
    graphqlUrl: service.graphqlUrl,
    global: false,
    logger: silentLogger,
    graceMs: 30_000,
    backoff: { initialMs: 100, maxMs: 1_000 },
  });
  expect(bw.status().connected).toBe(true);
  const client = bw;

  // An operator halts the tenant for a minute: the breaker state is persisted.
  await gql(service.graphqlUrl, 'mutation { forceOpenBreaker(tenantId: "rc", reason: "maintenance", durationMs: 60000) { state } }');
  await waitUntil(() => client.currentDecision().action === 'HALT', 5_000, 'HALT');

  const stopping = service.stop();
  dropServerConnections(graphqlPort);
  await stopping;
  service = undefined;
  await waitUntil(() => !client.status().connected, 5_000, 'disconnect noticed');
  const down = client.status();
  expect(down.state).toBe('connecting');
  // Within the grace period the last known decision still stands.
  await expect(client.checkpoint()).rejects.toMatchObject({ reason: expect.stringContaining('maintenance') });

  await sleep(300);
  service = await startTestService({ dataDir, policyFile, policyFileExplicit: true, otlpPort, graphqlPort });
  await waitUntil(() => client.status().connected, 15_000, 'reconnect');
  expect(client.status().reconnects).toBeGreaterThanOrEqual(1);
  // The restored breaker still halts the tenant...
  await expect(client.run('after', () => client.checkpoint())).rejects.toMatchObject({ scope: 'TENANT' });

  // ...until the operator resets it on the new server; the change arrives over the new subscription.
  await gql(service.graphqlUrl, 'mutation { resetBreaker(tenantId: "rc") { state } }');
  await waitUntil(() => client.currentDecision().action === 'ALLOW', 5_000, 'ALLOW after reset');
  expect((await client.run('after-reset', () => client.checkpoint())).action).toBe('ALLOW');

  // Spans made after the restart reach the new server.
  await client.run('post-restart', () => client.toolCall('ping', () => sleep(1)));
  await client.flush();
  const result = await service.store.client.query({ query: "SELECT SpanName FROM spans WHERE TenantId = 'rc' AND RunId = 'post-restart' ORDER BY SpanName", format: 'JSONEachRow' });
  expect(await result.json()).toEqual([{ SpanName: 'execute_tool ping' }, { SpanName: 'invoke_agent agent' }]);
});
