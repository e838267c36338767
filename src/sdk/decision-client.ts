// One decisions subscription per tenant over the graphql-sse protocol (distinct connections mode),
// kept open for the instance's lifetime: reconnects with capped exponential backoff and jitter after
// any failure or end of stream, to the next of its endpoints when it has several, and tells its owner
// when it is connected and since when it is not.

import { createClient, type Client } from 'graphql-sse';
import type { Decision } from '../contracts/decision.js';
import { DECISION_FIELDS, decisionFromGraphql } from './decision-cache.js';
import type { SdkLogger } from './logger.js';

export interface BackoffOptions {
  /** first retry delay; default 250 ms */
  initialMs?: number;
  /** cap; default 10 s */
  maxMs?: number;
}

export interface DecisionClientOptions {
  /** the graphql-sse endpoints in failover order, e.g. http://127.0.0.1:4000/graphql/stream */
  endpoints: readonly string[];
  tenantId: string;
  /** API token sent as Authorization: Bearer */
  token?: string;
  backoff?: BackoffOptions;
  logger: SdkLogger;
  onDecision(decision: Decision): void;
  /** a (re)connection was answered: what follows replaces what earlier connections said */
  onConnected(): void;
  onDisconnected(reason: string): void;
}

const SUBSCRIPTION = `subscription BreakwaterDecisions($tenantId: String!) { decisions(tenantId: $tenantId) { ${DECISION_FIELDS} } }`;

export class DecisionClient {
  readonly #o: DecisionClientOptions;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #client: Client;
  #dispose: (() => void) | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** consecutive failed attempts; reset by a message */
  #failures = 0;
  #connected = false;
  #closed = false;
  /** attempt counter, so callbacks of an abandoned attempt are ignored */
  #attempt = 0;
  #lastError: string | undefined;
  #lastLoggedError: string | undefined;
  #waiters: (() => void)[] = [];
  /** the endpoint the next attempt uses; a failed attempt moves it on */
  #endpoint = 0;
  reconnects = 0;
  nextRetryAt: number | undefined;

  constructor(options: DecisionClientOptions) {
    if (options.endpoints.length === 0) throw new TypeError('DecisionClient: at least one endpoint is required');
    this.#o = options;
    this.#initialMs = Math.max(1, options.backoff?.initialMs ?? 250);
    this.#maxMs = Math.max(this.#initialMs, options.backoff?.maxMs ?? 10_000);
    this.#client = createClient({
      // Read at each connection, so a reconnection goes to the endpoint chosen after the failure.
      url: () => this.endpoint,
      headers: (): Record<string, string> => (options.token ? { authorization: `Bearer ${options.token}` } : {}),
      // Reconnection is ours (unbounded, with status); the library's own retries are off.
      retryAttempts: 0,
      // Looked up at each connection, so fetch wrappers installed later are honoured.
      fetchFn: fetchWithCause,
    });
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** the endpoint of the current (or next) connection */
  get endpoint(): string {
    return this.#o.endpoints[this.#endpoint % this.#o.endpoints.length]!;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  start(): void {
    this.#subscribe();
  }

  /** Resolves true once connected, false after `timeoutMs` (or when closed first). */
  waitConnected(timeoutMs: number): Promise<boolean> {
    if (this.#connected) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(this.#connected);
      };
      this.#waiters.push(done);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#attempt++;
    clearTimeout(this.#retryTimer);
    this.#dispose?.();
    this.#client.dispose();
    this.#connected = false;
    this.#wake();
  }

  #subscribe(): void {
    if (this.#closed) return;
    const attempt = ++this.#attempt;
    const current = () => attempt === this.#attempt && !this.#closed;
    this.nextRetryAt = undefined;
    this.#dispose = this.#client.subscribe<{ decisions: Record<string, unknown> }>(
      { query: SUBSCRIPTION, variables: { tenantId: this.#o.tenantId } },
      {
        next: (result) => {
          if (!current()) return;
          if (result.errors && result.errors.length > 0) {
            this.#fail(attempt, `GraphQL error: ${result.errors.map((e) => e.message).join('; ')}`);
            return;
          }
          // Connected means holding the server's current decision: the stream opens with it, and a
          // refused subscription (another tenant) opens too, with an error result instead.
          const raw = result.data?.decisions;
          if (raw === undefined || raw === null) return;
          this.#markConnected();
          this.#failures = 0;
          this.#o.onDecision(decisionFromGraphql(raw));
        },
        error: (err: unknown) => {
          if (!current()) return;
          void describeError(err).then((reason) => {
            if (current()) this.#fail(attempt, reason);
          });
        },
        complete: () => {
          if (current()) this.#fail(attempt, 'the server ended the subscription');
        },
      },
    );
  }

  #markConnected(): void {
    if (this.#connected) return;
    this.#connected = true;
    if (this.#lastLoggedError !== undefined) this.#o.logger.info('decision subscription restored', { tenantId: this.#o.tenantId });
    this.#lastError = undefined;
    this.#lastLoggedError = undefined;
    this.#o.onConnected();
    this.#wake();
  }

  #fail(attempt: number, reason: string): void {
    if (attempt !== this.#attempt) return;
    this.#attempt++;
    this.#dispose?.();
    this.#dispose = undefined;
    this.#connected = false;
    this.#lastError = reason;
    this.#o.onDisconnected(reason);
    if (reason !== this.#lastLoggedError) {
      this.#lastLoggedError = reason;
      this.#o.logger.warn('decision subscription down; reconnecting', { tenantId: this.#o.tenantId, endpoint: this.endpoint, reason });
    }
    // The cached decisions stay with the owner; only where the next attempt connects changes.
    if (this.#o.endpoints.length > 1) this.#endpoint = (this.#endpoint + 1) % this.#o.endpoints.length;
    const delay = this.backoffDelay(this.#failures++);
    this.nextRetryAt = Date.now() + delay;
    this.reconnects++;
    this.#retryTimer = setTimeout(() => this.#subscribe(), delay);
    // A process that is otherwise done need not wait for the next attempt.
    this.#retryTimer.unref();
  }

  /** Exponential from initialMs, capped at maxMs, with jitter over its upper half so clients spread out. */
  backoffDelay(failures: number): number {
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(failures, 30));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** fetch, looked up at each call, with the network cause (ECONNREFUSED ...) kept in the message. */
async function fetchWithCause(input: Parameters<typeof globalThis.fetch>[0], init?: RequestInit): Promise<Response> {
  try {
    return await globalThis.fetch(input, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message;
    if (err instanceof Error && detail !== undefined && err.name !== 'AbortError') throw new Error(`${err.message} (${detail})`, { cause: err });
    throw err;
  }
}

/** What went wrong, with the GraphQL error messages of an HTTP error answer when it has them. */
async function describeError(err: unknown): Promise<string> {
  if (err instanceof Error) {
    const response = (err as { response?: { status?: number; statusText?: string; text?: () => Promise<string> } }).response;
    if (response?.status !== undefined) {
      const status = `HTTP ${response.status} ${response.statusText ?? ''}`.trim();
      const body = await response.text?.().catch(() => '');
      return body ? `${status}: ${graphqlMessages(body)}` : status;
    }
    const cause = (err as { cause?: unknown }).cause;
    const causeText = cause instanceof Error ? `: ${cause.message}` : '';
    return `${err.message}${causeText}`;
  }
  if (Array.isArray(err)) return err.map((e) => (e as { message?: string }).message ?? String(e)).join('; ');
  return String(err);
}

function graphqlMessages(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: { message?: string }[] };
    if (Array.isArray(parsed.errors)) return parsed.errors.map((e) => e.message ?? '').join('; ');
  } catch {
    // not JSON
  }
  return body.slice(0, 300);
}
