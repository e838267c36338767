import type { IncomingMessage, ServerResponse } from 'node:http';
import { loadConsole, type ConsoleBundle } from './console-bundle.js';
import { GRAPHIQL_ASSETS, graphiqlAssets } from './graphiql-page.js';

/** Only this origin's scripts, styles, images and connections; no inline script, no framing. */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";
/** GraphiQL's editor (Monaco) sets styles on its elements, so inline styles are allowed there, scripts still not. */
export const GRAPHIQL_CSP = CONSOLE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

const SECURITY_HEADERS = { 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' };

function indexHtml(bundle: ConsoleBundle): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Breakwater console</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="/console/console-${bundle.version}.css" />
  </head>
  <body>
    <div id="app"></div>
    <script type="module" src="/console/main-${bundle.version}.js"></script>
  </body>
</html>
`;
}

/**
 * Serves the console at / and its bundle under /console/, and GraphiQL's files under /graphiql/;
 * false for any other path. The bundle is made at the first request and kept.
 */
export function createConsoleRoutes(load: () => Promise<ConsoleBundle> = loadConsole): (req: IncomingMessage, res: ServerResponse, path: string) => boolean {
  let bundle: Promise<ConsoleBundle> | undefined;
  const current = () => (bundle ??= load().catch((err: unknown) => {
    bundle = undefined;
    throw err;
  }));
  const send = (res: ServerResponse, type: string, body: Buffer | string, cache: string, csp = CONSOLE_CSP) => {
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': type, 'Cache-Control': cache, 'Content-Security-Policy': csp, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };
  const fail = (res: ServerResponse, status: number, text: string) => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' }).end(`${text}\n`);
  };
  return (req, res, path) => {
    const isConsole = path === '/' || path.startsWith('/console/');
    if (!isConsole && !path.startsWith(GRAPHIQL_ASSETS)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      fail(res, 405, 'method not allowed');
      return true;
    }
    const answer = isConsole
      ? current().then((b) => {
          if (path === '/') return send(res, 'text/html; charset=utf-8', indexHtml(b), 'no-cache');
          const forever = 'public, max-age=31536000, immutable';
          if (path === `/console/main-${b.version}.js`) return send(res, 'text/javascript; charset=utf-8', b.js, forever);
          if (path === `/console/console-${b.version}.css`) return send(res, 'text/css; charset=utf-8', b.css, forever);
          fail(res, 404, 'not found');
        })
      : graphiqlAssets().then((files) => {
          const file = files.get(path.slice(GRAPHIQL_ASSETS.length));
          if (file) send(res, file.type, file.body, 'public, max-age=3600', GRAPHIQL_CSP);
          else fail(res, 404, 'not found');
        });
    answer.catch((err: unknown) => fail(res, 500, `the console could not be loaded: ${(err as Error).message}`));
    return true;
  };
}
