// The SDK as its users get it: `npm pack` of packages/sdk, installed into an empty project from the
// tarball (its dependencies from the npm registry), pulls in no part of the server, and halts an
// agent loop on a real Breakwater's decision, configured by the environment only.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { REPO_ROOT } from '../helpers/child-service.js';
import { startWithPolicy, tempDataDir } from '../helpers/service.js';

const run = promisify(execFile);

// The project's Node first on PATH, so npm's lifecycle scripts (prepack) and the agent use it; and
// none of the npm_* variables of an enclosing `npm exec`, so the install is a user's own.
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_')));
env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;

const AGENT = `
import { Breakwater, BreakwaterHaltError } from '@breakwater/sdk';
const bw = await Breakwater.start({ tenantId: 'packed', serviceName: 'packed-agent', failMode: 'open', global: true });
let halt;
try {
  await bw.run('packed-run', async () => {
    for (let step = 0; step < 400; step++) {
      await bw.checkpoint();
      await bw.toolCall('search', () => new Promise((r) => setTimeout(r, 10)));
    }
  });
} catch (err) {
  if (!(err instanceof BreakwaterHaltError)) throw err;
  halt = err.decision;
}
await bw.shutdown();
console.log(JSON.stringify({ halt: halt ?? null }));
`;

// The published types resolve and type an agent's use of them (declarations are tsc's own output, so skipLibCheck).
const TYPED = `
import { Breakwater, BreakwaterHaltError, type Decision, type StartOptions } from '@breakwater/sdk';
const options: StartOptions = { tenantId: 't', graphqlUrl: ['http://a:4000', 'http://b:4000'], failMode: 'open' };
const bw = await Breakwater.start(options);
const decision: Decision = bw.currentDecision();
export const seen: [string, string] = [decision.action, BreakwaterHaltError.name];
`;

let service: Service;

beforeAll(async () => {
  service = await startWithPolicy('tiers: { free: { run: { toolCallsPerMinute: 5 } } }\ntenants: { packed: { tier: free } }\n');
});

afterAll(async () => {
  await service?.stop();
});

it('installs from its tarball without the server and halts an agent loop', { timeout: 180_000 }, async () => {
  const work = tempDataDir('bw-sdk-pack-');
  const packed = await run('npm', ['pack', join(REPO_ROOT, 'packages/sdk'), '--pack-destination', work, '--json'], { cwd: work, env, maxBuffer: 16 << 20 });
  const [entry] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string }[];
  if (entry === undefined) throw new Error(`npm pack made no tarball: ${packed.stdout}`);
  const tarball = join(work, entry.filename);

  const project = join(work, 'agent');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'agent', private: true, type: 'module' }));
  await run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project, env, maxBuffer: 16 << 20 });

  const modules = join(project, 'node_modules');
  const manifest = JSON.parse(readFileSync(join(modules, '@breakwater/sdk/package.json'), 'utf8')) as { dependencies: Record<string, string> };
  expect(Object.keys(manifest.dependencies).filter((name) => !name.startsWith('@opentelemetry/') && name !== 'graphql-sse')).toEqual([]);
  expect(existsSync(join(modules, 'chdb'))).toBe(false);
  expect(existsSync(join(modules, '@clickhouse/client'))).toBe(false);
  expect(existsSync(join(modules, 'breakwater'))).toBe(false);

  writeFileSync(join(project, 'typed.ts'), TYPED);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true }, files: ['typed.ts'] }),
  );
  await run(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project, env });

  writeFileSync(join(project, 'agent.mjs'), AGENT);
  const agent = await run(process.execPath, ['agent.mjs'], {
    cwd: project,
    env: { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: service.otlpUrl, BREAKWATER_GRAPHQL_URL: service.graphqlUrl },
    timeout: 60_000,
  });
  const lastLine = agent.stdout.trim().split('\n').at(-1) ?? '';
  const { halt } = JSON.parse(lastLine) as { halt: Record<string, unknown> | null };
  // Breakwater's own HALT (a rate only the server judges), received over the subscription.
  expect(halt).toMatchObject({ action: 'HALT', tenantId: 'packed', metric: 'toolCallsPerMinute' });
  expect(halt?.source).toBeUndefined();
});
