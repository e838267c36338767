import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { startTestService, tempDataDir } from '../helpers/service.js';

describe('the console and GraphiQL files on the API port', () => {
  let service: Service;
  beforeAll(async () => {
    service = await startTestService({ dataDir: tempDataDir() });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('answers / with the page under a strict Content-Security-Policy, its bundle cached for good', async () => {
    const page = await fetch(`${service.graphqlUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self';");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]/);
    const script = /src="(\/console\/main-[0-9a-f]{12}\.js)"/.exec(html)![1]!;
    const styles = /href="(\/console\/console-[0-9a-f]{12}\.css)"/.exec(html)![1]!;
    const js = await fetch(`${service.graphqlUrl}${script}`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect((await js.text()).length).toBeGreaterThan(10_000);
    expect((await fetch(`${service.graphqlUrl}${styles}`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  it('answers an old bundle name 404, and a POST to / 405', async () => {
    expect((await fetch(`${service.graphqlUrl}/console/main-000000000000.js`)).status).toBe(404);
    expect((await fetch(`${service.graphqlUrl}/`, { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await fetch(`${service.graphqlUrl}/graphiql/nothing.js`)).status).toBe(404);
  });

  it("serves GraphiQL's page with its scripts from this server, none inline, on the example query", async () => {
    const page = await fetch(`${service.graphqlUrl}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self';");
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script>|<script src="[^"]*"[^>]*>[^<]/);
    expect(html).toContain('<title>Breakwater GraphiQL</title>');
    expect(html).toContain('tenants(sort: TOKEN_VELOCITY');
    for (const file of ['graphiql.js', 'graphiql.css', 'start.js', 'worker-editorWorkerService.js', 'worker-json.js', 'worker-graphql.js']) {
      const res = await fetch(`${service.graphqlUrl}/graphiql/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get('content-type'), file).toMatch(file.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
    }
  });
});
