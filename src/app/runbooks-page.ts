import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { renderMarkdown } from './markdown-subset.js';

// GET /runbooks: docs/runbooks.md as one self-contained page, so the alert rules' runbook_url
// (http://localhost:4000/runbooks#<uid>) opens where Grafana users already reach Breakwater.
// No token: the page is the project's own documentation and holds no tenant data.

/** docs/runbooks.md next to dist/ (or src/), as the image copies it. */
export const RUNBOOKS_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'runbooks.md');

export function runbooksHtml(markdown: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Breakwater runbooks</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
h2{border-top:1px solid #d0d7de;padding-top:1rem;margin-top:2rem}
:target{background:#fff8c5}
code{font:0.9em ui-monospace,monospace;background:#f6f8fa;padding:0.1em 0.3em;border-radius:4px}
pre{background:#f6f8fa;padding:0.8rem;overflow:auto}
</style></head><body>
${renderMarkdown(markdown)}
</body></html>
`;
}

/** Handles GET/HEAD /runbooks; false for any other request. The page is rendered once, on first use. */
export function createRunbooksHandler(file = RUNBOOKS_FILE): (req: IncomingMessage, res: ServerResponse, path: string) => boolean {
  let page: string | undefined;
  return (req, res, path) => {
    if (path !== '/runbooks' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    try {
      page ??= runbooksHtml(readFileSync(file, 'utf8'));
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`runbooks not found: ${file} is missing from this installation\n`);
      return true;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'" }).end(req.method === 'HEAD' ? undefined : page);
    return true;
  };
}
