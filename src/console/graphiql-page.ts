import type { GraphiQLOptions } from 'graphql-yoga';

/** Where GraphiQL's own files are served, on the API port. */
export const GRAPHIQL_ASSETS = '/graphiql/';

/** GraphiQL opens on a query that answers on any Breakwater, with no ids to fill in. */
export const EXAMPLE_QUERY = `# Breakwater: tenants by token velocity, their breakers and last hour of tokens.
# Ctrl-Enter runs it; the Docs panel lists every field.
query Fleet {
  tenants(sort: TOKEN_VELOCITY, first: 10) {
    totalCount
    edges {
      node {
        id
        decision { action state reason }
        metrics { tokenVelocity60s toolCallsPerMinute costUsd }
        trips(minutes: 60)
        tokens: timeseries(metric: TOKENS, last: "1h") { time value }
      }
    }
  }
}
`;

export const GRAPHIQL_OPTIONS: GraphiQLOptions = { title: 'Breakwater GraphiQL', defaultQuery: EXAMPLE_QUERY, subscriptionsProtocol: 'GRAPHQL_SSE' };

/**
 * The page yoga answers a browser's GET /graphql with: GraphiQL's script, styles and Monaco's
 * workers come from this server (no CDN), and the options travel as data so that no inline
 * script is needed under the Content-Security-Policy.
 */
export function renderLocalGraphiQL(opts: GraphiQLOptions): string {
  const data = JSON.stringify(opts).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${escapeHtml(opts.title ?? 'Breakwater GraphiQL')}</title>
    <link rel="icon" href="${GRAPHIQL_ASSETS}favicon.ico" />
    <link rel="stylesheet" href="${GRAPHIQL_ASSETS}graphiql.css" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>GraphiQL needs JavaScript.</noscript>
    <div id="root"></div>
    <script type="application/json" id="graphiql-options">${data}</script>
    <script src="${GRAPHIQL_ASSETS}graphiql.js"></script>
    <script src="${GRAPHIQL_ASSETS}start.js"></script>
  </body>
</html>
`;
}

/** Sets Monaco's workers to this server's files and renders GraphiQL with the page's options. */
const START = `self.MonacoEnvironment = {
  globalAPI: false,
  getWorkerUrl: function (_moduleId, label) { return '${GRAPHIQL_ASSETS}worker-' + label + '.js'; },
};
YogaGraphiQL.renderYogaGraphiQL(document.querySelector('#root'), JSON.parse(document.getElementById('graphiql-options').textContent));
`;

export interface Asset {
  type: string;
  body: Buffer;
}

let assets: Promise<Map<string, Asset>> | undefined;

/** GraphiQL's files by name under GRAPHIQL_ASSETS; loaded at the first request (the package is large). */
export function graphiqlAssets(): Promise<Map<string, Asset>> {
  assets ??= import('@graphql-yoga/render-graphiql/graphiql').then((g) => {
    const js = 'text/javascript; charset=utf-8';
    const favicon = /^data:[^;]+;base64,(.*)$/.exec(g.favicon)?.[1] ?? '';
    return new Map<string, Asset>([
      ['graphiql.js', { type: js, body: Buffer.from(g.js) }],
      ['graphiql.css', { type: 'text/css; charset=utf-8', body: Buffer.from(g.css) }],
      ['start.js', { type: js, body: Buffer.from(START) }],
      ['worker-editorWorkerService.js', { type: js, body: Buffer.from(g.editorWorkerService) }],
      ['worker-json.js', { type: js, body: Buffer.from(g.jsonWorker) }],
      ['worker-graphql.js', { type: js, body: Buffer.from(g.graphqlWorker) }],
      ['favicon.ico', { type: 'image/x-icon', body: Buffer.from(favicon, 'base64') }],
    ]);
  });
  return assets;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
