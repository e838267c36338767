import { createClient as createSseClient } from 'graphql-sse';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface GraphqlResponse<T = Record<string, unknown>> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: { code?: string; [k: string]: unknown } }[];
}

/** One GraphQL operation over real HTTP (GraphQL over HTTP, JSON). */
export async function gql<T = Record<string, unknown>>(
  graphqlUrl: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<GraphqlResponse<T>> {
  const res = await fetch(`${graphqlUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as Omit<GraphqlResponse<T>, 'status'>;
  return { status: res.status, ...body };
}

export interface SubscriptionHandle<T> {
  /** every message received so far */
  messages: T[];
  /** errors the subscription ended with */
  errors: unknown[];
  /** resolves with the first message satisfying `predicate` */
  waitFor(predicate: (message: T) => boolean, timeoutMs?: number): Promise<T>;
  close(): void;
}

function handle<T>(start: (sink: { next(v: T): void; error(e: unknown): void; complete(): void }) => () => void): SubscriptionHandle<T> {
  const messages: T[] = [];
  const errors: unknown[] = [];
  const waiters: { predicate: (m: T) => boolean; resolve: (m: T) => void }[] = [];
  const dispose = start({
    next(value) {
      messages.push(value);
      for (const w of [...waiters]) {
        if (w.predicate(value)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(value);
        }
      }
    },
    error(e) {
      errors.push(e);
    },
    complete() {},
  });
  return {
    messages,
    errors,
    waitFor(predicate, timeoutMs = 10_000) {
      const found = messages.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(messages).slice(0, 500)} errors ${JSON.stringify(errors).slice(0, 500)}`)), timeoutMs);
        waiters.push({ predicate, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
    close: dispose,
  };
}

/** A graphql-sse client: each subscription its own stream, or all on one with `singleConnection`. */
export function connectSse(
  graphqlUrl: string,
  token?: string,
  options: { singleConnection?: boolean } = {},
): { subscribe<T>(query: string, variables?: Record<string, unknown>): SubscriptionHandle<T>; dispose(): void } {
  const client = createSseClient({
    url: `${graphqlUrl}/graphql/stream`,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    singleConnection: options.singleConnection ?? false,
  });
  return {
    subscribe: <T>(query: string, variables: Record<string, unknown> = {}) =>
      handle<T>((sink) =>
        client.subscribe<T>({ query, variables }, {
          // A refused or invalid subscription arrives as one result of errors, then the stream ends.
          next: (v) => (v.errors ? sink.error(v.errors) : sink.next(v.data as T)),
          error: (e) => sink.error(e),
          complete: () => sink.complete(),
        }),
      ),
    dispose: () => client.dispose(),
  };
}

/** A subscription over the graphql-sse protocol, with the graphql-sse client. */
export function subscribeSse<T>(graphqlUrl: string, query: string, variables: Record<string, unknown>, token?: string, options: { singleConnection?: boolean } = {}): SubscriptionHandle<T> {
  const connection = connectSse(graphqlUrl, token, options);
  const subscription = connection.subscribe<T>(query, variables);
  return {
    ...subscription,
    close: () => {
      subscription.close();
      connection.dispose();
    },
  };
}

/** One graphql-ws connection (the graphql-ws client) that can hold several subscriptions. */
export function connectWs(graphqlUrl: string, token?: string): { subscribe<T>(query: string, variables?: Record<string, unknown>): SubscriptionHandle<T>; dispose(): void } {
  const client = createWsClient({
    url: `${graphqlUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: () => {},
  });
  return {
    subscribe: <T>(query: string, variables: Record<string, unknown> = {}) =>
      handle<T>((sink) =>
        client.subscribe<T>({ query, variables }, {
          next: (v) => (v.errors ? sink.error(v.errors) : sink.next(v.data as T)),
          error: (e) => sink.error(e),
          complete: () => sink.complete(),
        }),
      ),
    dispose: () => void client.dispose(),
  };
}

/** A subscription over graphql-ws, with the graphql-ws client, on a connection of its own. */
export function subscribeWs<T>(graphqlUrl: string, query: string, variables: Record<string, unknown>, token?: string): SubscriptionHandle<T> {
  const connection = connectWs(graphqlUrl, token);
  const subscription = connection.subscribe<T>(query, variables);
  return {
    ...subscription,
    close: () => {
      subscription.close();
      connection.dispose();
    },
  };
}

/** A subscription over GraphQL Yoga's own SSE on /graphql (a POST answered with text/event-stream). */
export function subscribeYogaSse<T>(graphqlUrl: string, query: string, variables: Record<string, unknown>, token?: string): SubscriptionHandle<T> {
  const abort = new AbortController();
  return handle<T>((sink) => {
    const read = async () => {
      const res = await fetch(`${graphqlUrl}/graphql`, {
        method: 'POST',
        signal: abort.signal,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      const decoder = new TextDecoder();
      let buffered = '';
      const reader = res.body!.getReader();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        buffered += decoder.decode(chunk.value, { stream: true });
        for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = /^data: (.+)$/m.exec(event)?.[1];
          if (!/^event: next$/m.test(event) || data === undefined) continue;
          const result = JSON.parse(data) as { data?: T; errors?: unknown[] };
          if (result.errors) sink.error(result.errors);
          else sink.next(result.data as T);
        }
      }
      sink.complete();
    };
    read().catch((e: unknown) => abort.signal.aborted || sink.error(e));
    return () => abort.abort();
  });
}
