// The README's "Run it" command as a new user types it (`npm start`, after the install CI has just
// done): it builds, starts on the embedded store, serves the console, ingest and the gateway, and
// stops cleanly on SIGTERM. Only the ports and data directory are moved, so it can run beside others.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/child-service.js';
import { tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

it('runs the README quickstart command, npm start, as written', async () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const command = /## Run it[\s\S]*?```sh\n(.*)\n```/.exec(readme)![1]!;
  expect(command).toBe('npm install && npm start');
  const dir = tempDataDir('bw-quickstart-');
  // the default policy file (./breakwater.yaml, absent in the repository), as on a fresh clone
  const { BREAKWATER_CONFIG: _config, ...inherited } = process.env;
  const child = spawn('npm', ['start'], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...inherited, BREAKWATER_OTLP_PORT: '0', BREAKWATER_GRAPHQL_PORT: '0', BREAKWATER_GATEWAY_PORT: '0', BREAKWATER_DATA_DIR: join(dir, 'data') },
  });
  let stderr = '';
  const messages: string[] = [];
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = once(child, 'exit');
  try {
    const listening = await new Promise<Record<string, string>>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (!line.startsWith('{')) return;
        const entry = JSON.parse(line) as Record<string, string>;
        messages.push(entry.msg ?? '');
        if (entry.msg === 'breakwater listening') resolve(entry);
      });
      void exited.then(() => reject(new Error(`npm start ended before listening: ${stderr.slice(-2000)}`)));
    });
    const api = listening.graphql!.replace(/\/graphql$/, '');
    const otlp = listening.otlp!.replace(/\/v1\/traces$/, '');
    expect((await fetch(`${api}/readyz`)).status).toBe(200);
    const page = await fetch(`${api}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    expect((await postSpans(otlp, runSteps('quickstart', 'r1', [{ tool: 'search' }]))).status).toBe(200);
    expect((await fetch(`${listening.gateway}/models`)).status).toBe(401); // there, and asking for a gateway key
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
  }
  await exited;
  // npm itself ends by the signal; the server it started flushed and stopped.
  await expect.poll(() => messages, { timeout: 15_000 }).toContain('breakwater stopped');
}, 240_000);
