import { tokenDigest } from './token-digest.js';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { createSchema, createYoga, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Core } from '../app/service.js';
import { useGraphqlSse } from './graphql-sse.js';
import { AuthFailureLimiter, bearerToken, type Principal } from './auth.js';
import { withAuthority } from './authority.js';
import { tooManyFailures, unauthenticated } from './errors.js';
import { resolvers, type ApiContext } from './resolvers.js';

export const SCHEMA_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema', 'graphql', 'schema.graphql');

export interface GraphqlLimits {
  maxDepth: number;
  /** graphql-armor cost: object fields cost 2, scalars 1, multiplied by depth */
  maxCost: number;
  maxAliases: number;
  maxTokens: number;
  /** largest request body accepted */
  maxBodyBytes: number;
  introspection: boolean;
}

export const DEFAULT_LIMITS: GraphqlLimits = {
  // The schema's own deepest path is 6; introspection (GraphiQL's TypeRef) reaches about 13, and
  // introspection is counted too, since nested ofType is where depth attacks live.
  maxDepth: 15,
  maxCost: 5000,
  maxAliases: 15,
  maxTokens: 2000,
  maxBodyBytes: 64 * 1024,
  introspection: true,
};

export const GRAPHQL_PATH = '/graphql';

/**
 * Who is calling. With no API tokens configured at all (local development on loopback: the
 * service refuses a non-loopback host in that case unless --insecure) the caller is an anonymous
 * platform admin; otherwise a known token is required.
 */
function principalFor(core: Core, token: string | undefined): Principal {
  const auth = core.auth();
  if (!auth.hasApiTokens) return { role: 'platformAdmin', name: 'anonymous' };
  const principal = auth.principal(token);
  if (!principal) throw unauthenticated();
  return principal;
}

interface ServerContext {
  req: IncomingMessage;
  res: ServerResponse;
}

export interface GraphqlService {
  /** handles a request for GRAPHQL_PATH (and the graphql-sse stream path); false when it is not one */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean;
  /** adds graphql-ws on the same server and path */
  attachWebSocket(server: Server): void;
  close(): Promise<void>;
}

export function createGraphqlService(core: Core, limits: GraphqlLimits = DEFAULT_LIMITS): GraphqlService {
  const typeDefs = readFileSync(SCHEMA_FILE, 'utf8');
  const schema = createSchema<ApiContext & ServerContext>({ typeDefs, resolvers: withAuthority(resolvers, typeDefs) });
  const limiter = new AuthFailureLimiter();
  const armor = EnvelopArmorPlugin<YogaInitialContext>({
    maxDepth: { n: limits.maxDepth, ignoreIntrospection: false, flattenFragments: true },
    costLimit: { maxCost: limits.maxCost },
    maxAliases: { n: limits.maxAliases },
    maxTokens: { n: limits.maxTokens },
    maxDirectives: { n: 10 },
    blockFieldSuggestion: { enabled: !limits.introspection },
  });
  /** The request's principal, through the failed-auth limiter (a request over HTTP or SSE). */
  const authenticate = (request: Request, req: IncomingMessage | undefined): Principal => {
    const address = req?.socket.remoteAddress ?? 'unknown';
    const token = bearerToken(request.headers.get('authorization'));
    if (limiter.blocked(address, token)) throw tooManyFailures();
    try {
      const principal = principalFor(core, token);
      limiter.succeed(address, token);
      return principal;
    } catch (err) {
      limiter.fail(address);
      throw err;
    }
  };
  // Stream reservations are held under a digest of the valid token, never the token.
  const sse = useGraphqlSse(`${GRAPHQL_PATH}/stream`, (request, serverContext) => {
    try {
      authenticate(request, (serverContext as Partial<ServerContext> | undefined)?.req);
    } catch {
      return undefined;
    }
    return tokenDigest(bearerToken(request.headers.get('authorization')) ?? '').toString('base64');
  });
  const plugins: Plugin[] = [armor, sse];
  if (!limits.introspection) plugins.push(useDisableIntrospection());

  const yoga = createYoga<ServerContext, ApiContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: { title: 'Breakwater', subscriptionsProtocol: 'WS' },
    landingPage: false,
    logging: false,
    // Batched operations are allowed, but each is checked like a single one.
    batching: { limit: 10 },
    plugins,
    context: ({ request, req }) => ({ principal: authenticate(request, req), core }),
  });

  let wss: WebSocketServer | undefined;

  return {
    handle(req, res, path) {
      if (path !== GRAPHQL_PATH && path !== `${GRAPHQL_PATH}/stream`) return false;
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > limits.maxBodyBytes) {
        res.writeHead(413, { 'Content-Type': 'application/json', Connection: 'close' });
        res.end(JSON.stringify({ errors: [{ message: `request body over ${limits.maxBodyBytes} bytes`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }] }));
        req.resume();
        return true;
      }
      if (req.method === 'POST' && req.headers['content-length'] === undefined && req.headers['transfer-encoding'] !== undefined) {
        // A chunked body has no declared size to check up front; GraphQL clients send Content-Length.
        res.writeHead(411, { 'Content-Type': 'application/json', Connection: 'close' });
        res.end(JSON.stringify({ errors: [{ message: 'Content-Length required', extensions: { code: 'LENGTH_REQUIRED' } }] }));
        req.resume();
        return true;
      }
      // The node adapter passes { req, res } as the server context.
      void yoga.requestListener(req, res);
      return true;
    },

    attachWebSocket(server) {
      wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: limits.maxBodyBytes });
      useServer<Record<string, unknown>, { principal?: Principal }>(
        {
          onConnect: (ctx) => {
            const address = ctx.extra.request.socket.remoteAddress ?? 'unknown';
            const fromParams = typeof ctx.connectionParams?.authorization === 'string' ? ctx.connectionParams.authorization : undefined;
            const token = bearerToken(fromParams ?? ctx.extra.request.headers.authorization);
            if (limiter.blocked(address, token)) return false;
            try {
              ctx.extra.principal = principalFor(core, token);
              limiter.succeed(address, token);
              return true;
            } catch {
              limiter.fail(address);
              return false;
            }
          },
          execute: (args: ExecutionArgs) => (args.rootValue as EnvelopedRoot).execute(args),
          subscribe: (args: ExecutionArgs) => (args.rootValue as EnvelopedRoot).subscribe(args),
          onSubscribe: async (ctx, _id, payload) => {
            const enveloped = yoga.getEnveloped({ req: ctx.extra.request, socket: ctx.extra.socket, params: payload });
            const document = enveloped.parse(payload.query);
            const args = {
              schema: enveloped.schema,
              operationName: payload.operationName,
              document,
              variableValues: payload.variables,
              contextValue: { principal: ctx.extra.principal!, core } satisfies ApiContext,
              rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
            };
            const errors = enveloped.validate(args.schema, args.document);
            if (errors.length > 0) return errors;
            return args as ExecutionArgs;
          },
        },
        wss,
      );
    },

    async close() {
      sse.reservations.close();
      if (!wss) return;
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss!.close(() => resolve()));
    },
  };
}

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => ReturnType<typeof import('graphql').execute>;
  subscribe: (args: ExecutionArgs) => ReturnType<typeof import('graphql').subscribe>;
}
