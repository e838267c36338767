// docs/api.md's example queries, run as written against `breakwater demo --keep-running` (what the
// docs say they return data against): each answers without errors and with data, the console shows
// the halted run, and the demo keeps its other tenants' traffic going after the verdict.

import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/child-service.js';
import { gql, subscribeSse } from '../helpers/graphql.js';
import { launchBrowser, offlinePage } from '../console/browser.js';

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

function docExamples(): string[] {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'api.md'), 'utf8');
  const block = /```graphql\n([\s\S]*?)```/.exec(doc.slice(doc.indexOf('The examples below')))![1]!;
  // An example may continue on indented lines.
  return block.split(/\n(?=\S)/).map((q) => q.trim()).filter((q) => q !== '');
}

/** Every list in an answer has something in it, bar those empty by the demo's design (no consents) and JSON scalars. */
function emptyLists(value: unknown, path: string, out: string[]): string[] {
  if (path.endsWith('.status')) return out;
  if (Array.isArray(value)) {
    if (value.length === 0 && !path.endsWith('pendingConsents')) out.push(path);
    value.forEach((v, i) => emptyLists(v, `${path}[${i}]`, out));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) emptyLists(v, `${path}.${k}`, out);
  }
  return out;
}

it('answers every docs/api.md example with data against the kept-running demo', async () => {
  const [otlpPort, graphqlPort, gatewayPort] = [await freePort(), await freePort(), await freePort()];
  const demo = runCli(['demo', '--keep-running'], { BREAKWATER_OTLP_PORT: String(otlpPort), BREAKWATER_GRAPHQL_PORT: String(graphqlPort), BREAKWATER_GATEWAY_PORT: String(gatewayPort) });
  let stdout = '';
  demo.stdout!.on('data', (d) => (stdout += d));
  demo.stderr!.resume();
  const exited = once(demo, 'exit');
  try {
    await expect.poll(() => stdout, { timeout: 60_000, interval: 200 }).toMatch(/Breakwater keeps running/);
    expect(stdout).toContain(`http://127.0.0.1:${graphqlPort}/graphql`);
    const url = `http://127.0.0.1:${graphqlPort}`;
    const breakers = await gql<{ tenant: { breakers: { runId: string | null }[] } }>(url, '{ tenant(id: "initech") { breakers { runId } } }');
    const run = breakers.data!.tenant.breakers.find((b) => b.runId !== null)!.runId!;

    const examples = docExamples();
    expect(examples.length).toBeGreaterThanOrEqual(10);
    for (const example of examples) {
      if (example.startsWith('subscription')) {
        const sub = subscribeSse<{ decisions: { action: string } }>(url, example, {});
        expect((await sub.waitFor(() => true)).decisions.action, example).toMatch(/^[A-Z_]+$/);
        sub.close();
        continue;
      }
      const res = await gql(url, example, example.includes('$run') ? { run } : {});
      expect(res.errors, example).toBeUndefined();
      expect(emptyLists(res.data, 'data', []), example).toEqual([]);
      expect(JSON.stringify(res.data), example).not.toMatch(/"tenant":null|"run":null/);
    }

    // The console shows the demo's halted run, with no network but Breakwater.
    const browser = await launchBrowser();
    try {
      const tab = await offlinePage(browser, url);
      await tab.page.goto(`${url}/#/run/initech/${encodeURIComponent(run)}`);
      await tab.page.waitForSelector('.halt-reason', { timeout: 15_000 });
      expect(await tab.page.$eval('.halt-reason', (e) => e.textContent)).toMatch(/toolCallsPerMinute/);
      expect(tab.blocked).toEqual([]);
    } finally {
      await browser.close();
    }

    // The other tenants still send after the verdict.
    const before = await gql<{ tenant: { metrics: { stepCount: number } } }>(url, '{ tenant(id: "acme") { metrics { stepCount } } }');
    await expect
      .poll(async () => (await gql<{ tenant: { metrics: { stepCount: number } } }>(url, '{ tenant(id: "acme") { metrics { stepCount } } }')).data!.tenant.metrics.stepCount, { timeout: 10_000, interval: 250 })
      .toBeGreaterThan(before.data!.tenant.metrics.stepCount);
  } finally {
    demo.kill('SIGTERM');
  }
  const [code] = (await exited) as [number | null];
  expect(code, stdout).toBe(0);
}, 120_000);
