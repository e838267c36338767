// GraphQL over SSE (the graphql-sse protocol) on the Yoga instance: graphql-sse's own handler,
// joined to Yoga's envelop (parse, validate, context, execute) the way
// @graphql-yoga/plugin-graphql-sse does, with one difference. graphql-sse 2.6 recognises an
// execution result only by its `data` key, so a result of errors alone (a validation error, or a
// subscription refused with FORBIDDEN by its resolver) was taken for execution arguments and
// answered with a 400 "Unable to detect operation AST". Here such results carry `data: null`, as
// the GraphQL spec allows for a failed execution, and reach the client as GraphQL errors.
import type { ServerResponse } from 'node:http';
import { getOperationAST, type DocumentNode, type ExecutionResult, type GraphQLError } from 'graphql';
import { createHandler } from 'graphql-sse/lib/use/fetch';
import type { Plugin, YogaInitialContext } from 'graphql-yoga';
import { freeReservedStream, StreamReservations, streamTokenOf } from './stream-reservations.js';

/** by name: graphql ships as ESM and CJS, and an error of the other copy fails instanceof */
function isGraphqlError(err: unknown): err is GraphQLError {
  return err instanceof Error && err.name === 'GraphQLError';
}

/** Yoga's adapter would answer a thrown error with its stack; say nothing instead. */
function unexpected(): Response {
  return new Response(JSON.stringify({ errors: [{ message: 'Unexpected error.' }] }), { status: 500, headers: { 'content-type': 'application/json; charset=utf-8' } });
}

function failed(errors: readonly GraphQLError[]): ExecutionResult {
  return { data: null, errors };
}

/** A result of errors alone, from envelop's subscribe or execute, as graphql-sse can tell it apart. */
function withData<T>(result: T): T | ExecutionResult {
  if (result && typeof result === 'object' && !(Symbol.asyncIterator in result) && !('data' in result) && 'errors' in result) {
    return failed((result as ExecutionResult).errors ?? []);
  }
  return result;
}

/**
 * A promise while `res` holds more than its socket takes. graphql-sse reads a subscription as
 * fast as it produces and queues every message for the stream without limit; waiting here leaves
 * the backlog in the subscriber's bounded queue, where newer decisions supersede older ones.
 */
function drained(res: ServerResponse | undefined): Promise<void> | undefined {
  if (res === undefined || res.destroyed || !res.writableNeedDrain) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * `caller` names the request's valid API credential (undefined when it has none): stream
 * reservations are made, opened and counted by it.
 */
export function useGraphqlSse(
  endpoint: string,
  caller: (request: Request, serverContext: Record<string, unknown> | undefined) => string | undefined,
  /** when a single-connection stream opens: whether its credential still holds, asked after each reload */
  holder: (request: Request) => () => boolean,
): Plugin<YogaInitialContext> & { reservations: StreamReservations; endRevokedStreams(): void } {
  const serverContexts = new WeakMap<Request, Record<string, unknown>>();
  let handler: ((request: Request) => Promise<Response>) | undefined;
  let fetchApi: { Request: typeof Request } | undefined;
  // single-connection mode: the GET that opened each stream, which carries its operations' messages
  const openStreams = new Map<string, { res: ServerResponse; stillValid: () => boolean }>();
  const responseFor = (request: Request): ServerResponse | undefined => {
    const stream = streamTokenOf(request);
    if (stream !== null) return openStreams.get(stream)?.res;
    return (serverContexts.get(request) as { res?: ServerResponse } | undefined)?.res;
  };
  const reservations = new StreamReservations({
    caller: (request) => caller(request, serverContexts.get(request)),
    free: async (streamToken) => {
      if (handler && fetchApi) await freeReservedStream(handler, fetchApi.Request, `http://localhost${endpoint}`, streamToken);
    },
  });
  return {
    reservations,
    endRevokedStreams() {
      // the stream would otherwise stay open after its operations, carrying pings
      for (const [stream, open] of openStreams) {
        if (open.stillValid()) continue;
        openStreams.delete(stream);
        open.res.end();
      }
    },
    onYogaInit({ yoga }) {
      fetchApi = yoga.fetchAPI;
      handler = createHandler(
        {
          authenticate: (req) => reservations.authenticate(req.raw),
          onNext: (_ctx, req) => drained(responseFor(req.raw)),
          async onSubscribe(req, params) {
            const enveloped = yoga.getEnveloped({ ...serverContexts.get(req.raw), request: req.raw, params });
            let document: DocumentNode;
            let errors: readonly GraphQLError[];
            try {
              document = enveloped.parse(params.query);
              errors = enveloped.validate(enveloped.schema, document);
            } catch (err) {
              // graphql-armor's limits throw from parse and from validation rules
              if (isGraphqlError(err)) return failed([err]);
              throw err;
            }
            if (errors.length > 0) return failed(errors);
            let contextValue: unknown;
            try {
              contextValue = await enveloped.contextFactory();
            } catch (err) {
              // The token check runs in the context factory: answer as /graphql does, not with a 500.
              if (!isGraphqlError(err)) throw err;
              const { http, ...extensions } = err.extensions as { http?: { status?: number } };
              const body = JSON.stringify({ errors: [{ message: err.message, extensions }] });
              return [body, { status: http?.status ?? 400, headers: { 'content-type': 'application/json; charset=utf-8' } }];
            }
            const args = { schema: enveloped.schema, document, contextValue, variableValues: params.variables, operationName: params.operationName };
            const operation = getOperationAST(document, params.operationName);
            return withData(await (operation?.operation === 'subscription' ? enveloped.subscribe(args) : enveloped.execute(args)));
          },
        },
        yoga.fetchAPI,
      );
    },
    onRequest({ request, endResponse, serverContext }) {
      if (!handler || request.url.split('?')[0]?.endsWith(endpoint) !== true) return;
      serverContexts.set(request, serverContext as Record<string, unknown>);
      const stream = streamTokenOf(request);
      const res = (serverContext as { res?: ServerResponse }).res;
      return handler(request).then((response) => {
        // only the GET that graphql-sse let open the stream carries it (a second one gets a 409)
        if (stream !== null && request.method === 'GET' && response.status === 200 && res !== undefined) {
          openStreams.set(stream, { res, stillValid: holder(request) });
          res.once('close', () => openStreams.get(stream)?.res === res && openStreams.delete(stream));
        }
        return endResponse(response);
      }, () => endResponse(unexpected()));
    },
  };
}
