// Server mode (CLICKHOUSE_URL set) against a stand-in ClickHouse HTTP server (a real chdb engine in
// a child process, test/helpers/clickhouse-http-server.ts). The embedded engine is never opened in
// this process: everything goes over HTTP, as it would to a ClickHouse server.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { startClickHouseHttpServer, stallClickHouse, type ClickHouseHttpServer } from '../helpers/clickhouse-http-server.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps, writePolicy } from '../helpers/spans.js';

const USER = 'breakwater';
const PASSWORD = 's3cret';
const TENANT = 'srv';
const POLICY = `
tiers:
  free:
    run: { toolCallsPerMinute: 5 }
`;

let clickhouseDir: string;
let clickhouse: ClickHouseHttpServer;
let service: Service | undefined;
/** runId -> spans acknowledged (answered 200) */
const acknowledged = new Map<string, number>();
/** runs whose every request was answered 503 */
const refused: string[] = [];

beforeAll(async () => {
  clickhouseDir = tempDataDir('bw-ch-standin-');
  clickhouse = await startClickHouseHttpServer({ dataDir: clickhouseDir, user: USER, password: PASSWORD });
});

afterAll(async () => {
  await service?.stop();
  await clickhouse?.stop();
});

function startService(password = PASSWORD): Promise<Service> {
  const dataDir = tempDataDir();
  return startTestService({
    dataDir,
    clickhouseUrl: clickhouse.url,
    clickhouseUser: USER,
    clickhousePassword: password,
    clickhouseDatabase: 'bwtest',
    clickhouseTimeoutMs: 1500,
    policyFile: writePolicy(dataDir, POLICY),
    policyFileExplicit: true,
  });
}

async function send(runId: string, spans: number): Promise<Response> {
  const res = await postSpans(service!.otlpUrl, runSteps(TENANT, runId, Array.from({ length: spans }, () => ({ model: 'gpt-4o-mini' }))));
  if (res.status === 200) acknowledged.set(runId, (acknowledged.get(runId) ?? 0) + spans);
  return res;
}

async function readyz(): Promise<number> {
  return (await fetch(`${service!.otlpUrl}/readyz`)).status;
}

async function storedByRun(): Promise<Map<string, number>> {
  const rows = await queryRows<{ RunId: string; n: string }>(
    service!.store.client,
    'SELECT RunId, toString(count()) AS n FROM spans WHERE TenantId = {tenant:String} GROUP BY RunId',
    { tenant: TENANT },
  );
  return new Map(rows.map((r) => [r.RunId, Number(r.n)]));
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('server mode', () => {
  it('a wrong password fails startup with ClickHouse’s authentication error', async () => {
    await expect(startService('wrong')).rejects.toThrow(/Authentication failed/);
  });

  it('creates the database, applies migrations there, and stores spans ingested over OTLP', async () => {
    service = await startService();
    expect(service.store.mode).toBe('server');
    const tables = await queryRows<{ name: string }>(
      service.store.client,
      "SELECT name FROM system.tables WHERE database = 'bwtest' AND name IN ('spans', 'breakwater_migrations') ORDER BY name",
    );
    expect(tables.map((t) => t.name)).toEqual(['breakwater_migrations', 'spans']);
    const [current] = await queryRows<{ db: string }>(service.store.client, 'SELECT currentDatabase() AS db');
    expect(current!.db).toBe('bwtest');
    expect(await readyz()).toBe(200);

    for (let i = 0; i < 3; i++) expect((await send(`before-${i}`, 4)).status).toBe(200);
    expect(await storedByRun()).toEqual(new Map([...acknowledged]));
  });

  it('in a storage outage answers 503, keeps deciding from memory, and recovers by itself without losing acknowledged spans', async () => {
    await clickhouse.kill();

    const res = await send('outage-0', 3);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    refused.push('outage-0');
    expect(await readyz()).toBe(503);

    // A tool-call loop past the run's 5 per minute: the breaker halts it though nothing is stored.
    const loop = await postSpans(service!.otlpUrl, runSteps(TENANT, 'loop', Array.from({ length: 8 }, () => ({ tool: 'search' }))));
    expect(loop.status).toBe(503);
    refused.push('loop');
    await eventually(async () => service!.core.bus.latest(TENANT, 'loop').action === 'HALT');

    clickhouse = await startClickHouseHttpServer({ port: clickhouse.port, dataDir: clickhouseDir, user: USER, password: PASSWORD });
    await eventually(async () => (await send('after-0', 2)).status === 200);
    await eventually(async () => (await readyz()) === 200);
    for (let i = 1; i < 3; i++) expect((await send(`after-${i}`, 2)).status).toBe(200);

    const stored = await storedByRun();
    for (const [runId, spans] of acknowledged) expect([runId, stored.get(runId)]).toEqual([runId, spans]);
    for (const runId of refused) expect(stored.has(runId)).toBe(false);
  });

  it('answers 503 within the request timeout when ClickHouse accepts connections but never answers', async () => {
    await clickhouse.kill();
    const stalled = await stallClickHouse(clickhouse.port);
    try {
      const started = Date.now();
      const res = await send('stalled', 2);
      expect(res.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(5_000);
      refused.push('stalled');
    } finally {
      await stalled.stop();
    }
    clickhouse = await startClickHouseHttpServer({ port: clickhouse.port, dataDir: clickhouseDir, user: USER, password: PASSWORD });
    await eventually(async () => (await send('after-stall', 2)).status === 200);
    const stored = await storedByRun();
    for (const [runId, spans] of acknowledged) expect([runId, stored.get(runId)]).toEqual([runId, spans]);
    expect(stored.has('stalled')).toBe(false);
  });
});
