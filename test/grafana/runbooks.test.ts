import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { headingId, renderMarkdown } from '../../src/app/markdown-subset.js';
import { startWithPolicy } from '../helpers/service.js';
import { alertRules, REPO_ROOT } from './grafana-files.js';

// GET /runbooks on the API port: where every alert rule's runbook_url points, served over real HTTP
// by a service whose API requires a token.

let service: Service;

beforeAll(async () => {
  service = await startWithPolicy('auth:\n  adminTokens:\n    - an-admin-token-of-sufficient-length\n');
});

afterAll(async () => {
  await service?.stop();
});

const origin = () => new URL(service.graphqlUrl).origin;

describe('GET /runbooks', () => {
  it('answers without a token, with an anchor for every alert rule a runbook_url names', async () => {
    const graphql = await fetch(`${origin()}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' });
    expect(graphql.status, 'the API itself needs the token').toBe(401);
    const res = await fetch(`${origin()}/runbooks`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    for (const { rule } of alertRules()) {
      const url = new URL(rule.annotations.runbook_url);
      expect(url.pathname).toBe('/runbooks');
      expect(html, rule.uid).toContain(`<h2 id="${url.hash.slice(1)}">`);
    }
    expect(html).toContain('<strong>Breaker opened</strong>');
  });

  it('is self-contained: no script, and nothing loaded from elsewhere', async () => {
    const res = await fetch(`${origin()}/runbooks`);
    const html = await res.text();
    expect(html).not.toMatch(/<script|<link|<img|src=/i);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
  });

  it('is not served on the OTLP port', async () => {
    expect((await fetch(`${new URL(service.otlpUrl).origin}/runbooks`)).status).toBe(404);
  });
});

describe('the Markdown subset docs/runbooks.md is written in', () => {
  it('renders headings with GitHub anchors, paragraphs, lists and code, escaping HTML', () => {
    expect(headingId('bw-breaker-opened')).toBe('bw-breaker-opened');
    expect(headingId('Exposing OTLP, beyond!')).toBe('exposing-otlp-beyond');
    const html = renderMarkdown('# Title\n\nOne `a<b` and\n**bold** <i>.\n\n- first\n  continued\n- second\n\n```\nx < y\n```\n');
    expect(html).toBe(
      [
        '<h1 id="title">Title</h1>',
        '<p>One <code>a&lt;b</code> and <strong>bold</strong> &lt;i&gt;.</p>',
        '<ul><li>first continued</li><li>second</li></ul>',
        '<pre><code>x &lt; y</code></pre>',
      ].join('\n'),
    );
  });

  it('leaves nothing of docs/runbooks.md unrendered', () => {
    const html = renderMarkdown(readFileSync(join(REPO_ROOT, 'docs/runbooks.md'), 'utf8'));
    expect(html).not.toMatch(/^#|\*\*|```/m);
  });
});
