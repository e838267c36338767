import { readFileSync } from 'node:fs';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { describe, expect, it } from 'vitest';
import { openStore } from '../src/storage/clickhouse.js';
import { readMigrations } from '../src/storage/migrations.js';
import { collectOutput, runCli, startChildService } from './helpers/child-service.js';
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

    const second = await startChildService(['--data-dir', dataDir]);
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
