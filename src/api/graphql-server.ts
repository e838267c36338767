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
import { GRAPHIQL_CSP } from '../console/console-routes.js';
import { GRAPHIQL_OPTIONS, renderLocalGraphiQL } from '../console/graphiql-page.js';
import { streamTokenOf } from './stream-reservations.js';
import { AuthFailureLimiter, bearerToken, type Authenticator, type Principal } from './auth.js';
import { withAuthority } from './authority.js';
import { tooManyFailures, unauthenticated } from './errors.js';
import { resolvers, type ApiContext } from './resolvers.js';
import {
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_TOKEN,
  SubscriptionRegistry,
  type SubscriptionOwner,
} from './subscription-registry.js';

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
  /** live subscriptions one WebSocket (or graphql-sse stream) may hold */
  maxSubscriptionsPerConnection: number;
  /** live subscriptions one token may hold across connections and transports */
  maxSubscriptionsPerToken: number;
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
  maxSubscriptionsPerConnection: DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  maxSubscriptionsPerToken: DEFAULT_MAX_SUBSCRIPTIONS_PER_TOKEN,
};

export const GRAPHQL_PATH = '/graphql';

/**
 * Who is calling. With no API tokens configured at all (local development on loopback: the
 * service refuses a non-loopback host in that case unless --insecure) the caller is an anonymous
 * platform admin; otherwise a known token is required.
 */
function principalFor(core: Core, token: string | undefined): Principal {
  const principal = currentPrincipal(core, token);
  if (!principal) throw unauthenticated();
  return principal;
}

function currentPrincipal(core: Core, token: string | undefined): Principal | undefined {
  const auth = core.auth();
  if (!auth.hasApiTokens) return { role: 'platformAdmin', name: 'anonymous' };
  return auth.principal(token);
}

/** Same role and tenant: a token that only moved in its list keeps its streams. */
function samePrincipal(a: Principal | undefined, b: Principal): boolean {
  if (a === undefined || a.role !== b.role) return false;
  return a.role === 'platformAdmin' || (b.role !== 'platformAdmin' && a.tenantId === b.tenantId);
}

/**
 * Whose a subscription is. The check keeps the token in a closure, as the open request or
 * WebSocket already does, because the authenticator can only look up a presented token.
 */
function ownerOf(core: Core, token: string | undefined, principal: Principal, connection: object | string): SubscriptionOwner {
  const credential = token === undefined ? 'anonymous' : tokenDigest(token).toString('base64');
  const key = `${credential} ${principal.role} ${principal.role === 'platformAdmin' ? '' : principal.tenantId}`;
  return {
    connection,
    credential,
    holder: { tenantId: principal.role === 'platformAdmin' ? null : principal.tenantId, name: principal.name },
    stillValid: () => {
      // One lookup per credential and authenticator: every subscription is checked at each reload.
      const auth = core.auth();
      let known = verdicts.get(auth);
      if (known === undefined) verdicts.set(auth, (known = new Map()));
      let valid = known.get(key);
      if (valid === undefined) known.set(key, (valid = samePrincipal(currentPrincipal(core, token), principal)));
      return valid;
    },
  };
}

const verdicts = new WeakMap<Authenticator, Map<string, boolean>>();

/** How long a revoked token's single-connection stream stays open to carry its operations' last messages. */
const REVOKED_STREAM_GRACE_MS = 250;

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
  const registry = new SubscriptionRegistry({ perConnection: limits.maxSubscriptionsPerConnection, perToken: limits.maxSubscriptionsPerToken }, core.refusals);
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
  }, (request) => {
    const token = bearerToken(request.headers.get('authorization'));
    const principal = currentPrincipal(core, token);
    return principal === undefined ? () => false : ownerOf(core, token, principal, request).stillValid;
  });
  const plugins: Plugin[] = [armor, sse];
  if (!limits.introspection) plugins.push(useDisableIntrospection());

  const yoga = createYoga<ServerContext, ApiContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: GRAPHIQL_OPTIONS,
    renderGraphiQL: renderLocalGraphiQL,
    landingPage: false,
    logging: false,
    // Batched operations are allowed, but each is checked like a single one.
    batching: { limit: 10 },
    plugins,
    context: ({ request, req }) => {
      const principal = authenticate(request, req);
      const token = bearerToken(request.headers.get('authorization'));
      // graphql-sse's single-connection mode names its stream on every operation
      const stream = streamTokenOf(request);
      const connection = stream === null ? (req?.socket ?? request) : `stream:${stream}`;
      return { principal, core, subscriptions: { registry, owner: ownerOf(core, token, principal, connection) } };
    },
  });

  let wss: WebSocketServer | undefined;
  /** each open WebSocket's owner: its principal was fixed at connection time */
  const sockets = new Map<{ close(code: number, reason: string): void }, SubscriptionOwner>();
  // Runs after the service's own listener has rebuilt the authenticator from the reloaded file.
  const stopWatchingPolicy = core.policy.onChange(() => {
    registry.revalidate();
    // after the operations on them have written their TOKEN_REVOKED errors
    setTimeout(() => sse.endRevokedStreams(), REVOKED_STREAM_GRACE_MS).unref();
    for (const [socket, owner] of sockets) {
      if (owner.stillValid()) continue;
      sockets.delete(socket);
      socket.close(4403, 'Forbidden: the token was revoked or changed');
    }
  });

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
      // GraphiQL's page, when yoga answers with it, loads only this server's scripts.
      if (req.method === 'GET' && req.headers.accept?.includes('text/html')) res.setHeader('Content-Security-Policy', GRAPHIQL_CSP);
      // The node adapter passes { req, res } as the server context.
      void yoga.requestListener(req, res);
      return true;
    },

    attachWebSocket(server) {
      wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: limits.maxBodyBytes });
      useServer<Record<string, unknown>, { principal?: Principal; owner?: SubscriptionOwner }>(
        {
          onConnect: (ctx) => {
            const address = ctx.extra.request.socket.remoteAddress ?? 'unknown';
            const fromParams = typeof ctx.connectionParams?.authorization === 'string' ? ctx.connectionParams.authorization : undefined;
            const token = bearerToken(fromParams ?? ctx.extra.request.headers.authorization);
            if (limiter.blocked(address, token)) return false;
            try {
              const principal = principalFor(core, token);
              ctx.extra.principal = principal;
              ctx.extra.owner = ownerOf(core, token, principal, ctx.extra.socket);
              sockets.set(ctx.extra.socket, ctx.extra.owner);
              limiter.succeed(address, token);
              return true;
            } catch {
              limiter.fail(address);
              return false;
            }
          },
          onClose: (ctx) => {
            sockets.delete(ctx.extra.socket);
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
              contextValue: { principal: ctx.extra.principal!, core, subscriptions: { registry, owner: ctx.extra.owner! } } satisfies ApiContext,
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
      stopWatchingPolicy();
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
