import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { describe, expect, it } from 'vitest';
import { openStore } from '../src/storage/clickhouse.js';
import { readMigrations } from '../src/storage/migrations.js';
import { startClickHouseHttpServer } from './helpers/clickhouse-http-server.js';
import { collectOutput, REPO_ROOT, runCli, startChildService } from './helpers/child-service.js';
import { recordingTracer } from './helpers/otel.js';
import { tempDataDir } from './helpers/service.js';

function spansFor(tenant: string, count: number): Uint8Array {
  const { tracer, finished } = recordingTracer({ 'tenant.id': tenant });
  for (let i = 0; i < count; i++) tracer.startSpan(`step ${i}`, { attributes: { 'gen_ai.operation.name': 'execute_tool' } }).end();
  return ProtobufTraceSerializer.serializeRequest(finished())!;
}

function send(otlpUrl: string, body: Uint8Array): Promise<Response> {
  return fetch(`${otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.from(body) });
}

describe('breakwater CLI', () => {
  it('prints help with every command and flag', async () => {
    const { code, stdout } = await collectOutput(runCli(['--help']));
    expect(code).toBe(0);
    expect(stdout).toMatch(/breakwater serve/);
    expect(stdout).toMatch(/breakwater migrate/);
    expect(stdout).toMatch(/--otlp-port\s+BREAKWATER_OTLP_PORT/);
  });

  it('refuses an unknown flag and a bad value with exit code 2 and a message', async () => {
    const unknown = await collectOutput(runCli(['serve', '--otlp-prot', '1']));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown flag --otlp-prot \(did you mean --otlp-port\?\)/);
    const bad = await collectOutput(runCli(['serve'], { BREAKWATER_OTLP_PORT: 'x' }));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/BREAKWATER_OTLP_PORT: expected a non-negative integer/);
    const verb = await collectOutput(runCli(['launch']));
    expect(verb.code).toBe(2);
    expect(verb.stderr).toMatch(/unknown command "launch"\n/);
    const typo = await collectOutput(runCli(['serv']));
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown command "serv" \(did you mean serve\?\)/);
  });

  it('prints its version, and the demo its own help', async () => {
    const version = await collectOutput(runCli(['--version']));
    expect(version.code).toBe(0);
    const { version: packageVersion } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(version.stdout).toBe(`breakwater ${packageVersion}\n`);
    const demoHelp = await collectOutput(runCli(['demo', '--help']));
    expect(demoHelp.code).toBe(0);
    expect(demoHelp.stdout).toMatch(/^breakwater demo \[--keep-running\]/);
    expect(demoHelp.stdout).not.toMatch(/breakwater migrate/);
  });

  it('migrates idempotently', async () => {
    const dataDir = tempDataDir();
    const first = await collectOutput(runCli(['migrate', '--data-dir', dataDir]));
    expect(first.code).toBe(0);
    const versions = readMigrations().map((m) => m.version);
    expect(versions.length).toBeGreaterThan(1);
    expect(JSON.parse(first.stdout.trim().split('\n').at(-1)!)).toMatchObject({ applied: versions });
    const second = await collectOutput(runCli(['migrate', '--data-dir', dataDir]));
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout.trim().split('\n').at(-1)!)).toMatchObject({ applied: [], alreadyApplied: versions });
  });

  it('flushes accepted spans on SIGTERM, exits 0, and keeps them across a restart', async () => {
    const dataDir = tempDataDir();
    // A long batch delay: the request is still waiting for its batch when SIGTERM arrives.
    const first = await startChildService(['--data-dir', dataDir, '--batch-max-delay-ms', '5000']);
    const pending = send(first.otlpUrl, spansFor('durable', 7));
    await new Promise((r) => setTimeout(r, 300));
    first.process.kill('SIGTERM');
    expect((await pending).status).toBe(200);
    expect(await first.exited).toBe(0);
    expect(first.logs.some((l) => l.msg === 'breakwater stopped')).toBe(true);
    // Without a file, the start says the built-in default is in force; with one, it names it.
    expect(first.logs.find((l) => String(l.msg).startsWith('policy in force'))).toMatchObject({ msg: expect.stringMatching(/the built-in default/), file: null, defaultTier: 'free', tenants: 0 });

    // The example policy, copied as it is, starts.
    const policyFile = join(dataDir, 'breakwater.yaml');
    copyFileSync(join(REPO_ROOT, 'breakwater.example.yaml'), policyFile);
    const second = await startChildService(['--data-dir', dataDir, '--config', policyFile]);
    expect(second.logs.find((l) => String(l.msg).startsWith('policy in force'))).toMatchObject({ msg: 'policy in force: the policy file', file: policyFile, tiers: ['free', 'pro', 'enterprise', 'research'], prices: 3 });
    expect((await send(second.otlpUrl, spansFor('durable', 3))).status).toBe(200);
    second.process.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    const store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir });
    try {
      const result = await store.client.query({ query: "SELECT toString(count()) AS n FROM spans WHERE TenantId = 'durable'", format: 'JSONEachRow' });
      expect(await result.json()).toEqual([{ n: '10' }]);
    } finally {
      await store.close();
    }
  });
});

/** A port something else holds, and a function to let it go. */
async function heldPort(): Promise<{ port: number; release: () => Promise<void> }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { port, release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const logLines = (stdout: string) => stdout.split('\n').flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as Record<string, unknown>] : []));

describe('start-up failures say what to change, in one line', () => {
  it('names the flag of a port already in use', async () => {
    const held = await heldPort();
    try {
      const { code, stderr } = await collectOutput(runCli(['serve', '--data-dir', tempDataDir(), '--otlp-port', String(held.port), '--graphql-port', '0', '--gateway-port', '0', '--log-level', 'error']));
      expect(code).toBe(2);
      expect(stderr).toBe(`breakwater: 127.0.0.1:${held.port} is already in use (another Breakwater?): stop what holds it, or choose another --otlp-port (BREAKWATER_OTLP_PORT)\n`);
    } finally {
      await held.release();
    }
  });

  it('names --data-dir when the data directory cannot be used, or another process holds it', async () => {
    const file = join(tempDataDir(), 'not-a-directory');
    writeFileSync(file, '');
    const notDir = await collectOutput(runCli(['migrate', '--data-dir', file]));
    expect(notDir.code).not.toBe(0);
    expect(notDir.stderr).toMatch(/^breakwater: cannot open the embedded ClickHouse in .*not-a-directory: .*check that --data-dir \(BREAKWATER_DATA_DIR\) is a directory this user can write\n$/);

    const dataDir = tempDataDir();
    const first = await startChildService(['--data-dir', dataDir]);
    try {
      const second = await collectOutput(runCli(['serve', '--data-dir', dataDir, '--otlp-port', '0', '--graphql-port', '0', '--gateway-port', '0', '--log-level', 'error']));
      expect(second.code).toBe(2);
      expect(second.stderr).toContain(`breakwater: the data directory ${dataDir} is in use by another process (pid ${first.process.pid}): stop it, or give this one another --data-dir (BREAKWATER_DATA_DIR)\n`);
    } finally {
      first.process.kill('SIGTERM');
      await first.exited;
    }
  }, 60_000);

  it('retries an unreachable ClickHouse server at start, then names --clickhouse-url', async () => {
    const held = await heldPort();
    await held.release(); // nothing listens there now
    const url = `http://breakwater:pw@127.0.0.1:${held.port}`;
    const down = await collectOutput(runCli(['migrate', '--clickhouse-startup-wait-ms', '1500'], { CLICKHOUSE_URL: url }));
    expect(down.code).not.toBe(0);
    expect(down.stderr).toBe(`breakwater: ClickHouse at http://127.0.0.1:${held.port}/ is unreachable (connect ECONNREFUSED 127.0.0.1:${held.port}); check --clickhouse-url (CLICKHOUSE_URL), or unset it for the embedded engine\n`);
    expect(logLines(down.stdout).filter((l) => l.msg === 'ClickHouse is unreachable; retrying').length).toBeGreaterThanOrEqual(2);

    // The server comes up while Breakwater waits for it (both started together, as in a compose file).
    const child = runCli(['migrate', '--clickhouse-startup-wait-ms', '60000'], { CLICKHOUSE_URL: url, CLICKHOUSE_USER: 'breakwater', CLICKHOUSE_PASSWORD: 'pw' });
    const retrying = new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ClickHouse is unreachable; retrying') && resolve()));
    const waiting = collectOutput(child);
    await retrying;
    const clickhouse = await startClickHouseHttpServer({ port: held.port, dataDir: tempDataDir('bw-ch-standin-'), user: 'breakwater', password: 'pw' });
    try {
      const up = await waiting;
      expect(up.stderr).toBe('');
      expect(up.code).toBe(0);
      expect(logLines(up.stdout).map((l) => l.msg)).toEqual(expect.arrayContaining(['ClickHouse is unreachable; retrying', 'migrations applied']));
    } finally {
      await clickhouse.stop();
    }
  }, 90_000);

  it('runs in server mode where chdb cannot even be loaded', async () => {
    const clickhouse = await startClickHouseHttpServer({ dataDir: tempDataDir('bw-ch-standin-'), user: 'breakwater', password: 'pw' });
    try {
      const env = { NODE_OPTIONS: `--import ${join(REPO_ROOT, 'test/helpers/without-chdb.mjs')}`, CLICKHOUSE_USER: 'breakwater', CLICKHOUSE_PASSWORD: 'pw' };
      const blocked = await collectOutput(runCli(['migrate', '--data-dir', tempDataDir()], env));
      // the hook works: embedded mode needs chdb, and says what to do without it
      expect(blocked.code).toBe(1);
      expect(blocked.stderr).toMatch(/^breakwater: the embedded ClickHouse \(chdb\) cannot be loaded on linux-x64 \(Cannot find package 'chdb' \(blocked.*\): install its library for this machine with `npm install --no-save @chdb\/lib-linux-x64-gnu` .* or use a ClickHouse server with --clickhouse-url \(CLICKHOUSE_URL\)\n$/);
      const server = await collectOutput(runCli(['migrate'], { ...env, CLICKHOUSE_URL: clickhouse.url }));
      expect(server.stderr).toBe('');
      expect(server.code).toBe(0);
    } finally {
      await clickhouse.stop();
    }
  }, 60_000);
});
