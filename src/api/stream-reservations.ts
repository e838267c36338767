// graphql-sse's single-connection mode: a PUT reserves a stream under a token, a GET opens it.
// Left to the library, anyone could reserve (kept forever if never opened) and open a reserved
// stream with no credential. Here a reservation is made and opened only with a valid API
// credential, belongs to it, is bounded per credential, and is freed if not opened in time.
import { randomUUID } from 'node:crypto';

/** unopened reservations one credential may hold at once */
export const MAX_RESERVATIONS_PER_CALLER = 8;
/** how long a reservation waits to be opened before it is freed */
export const RESERVATION_TTL_MS = 30_000;

type Refusal = [string, { status: number; statusText: string; headers: Record<string, string> }];

export interface StreamReservationsOptions {
  /** who presents the request's credential (a stable key), or undefined when it holds no valid one */
  caller: (request: Request) => string | undefined;
  /** frees the library's reservation of a stream that was never opened */
  free: (streamToken: string) => Promise<unknown>;
  ttlMs?: number;
  maxPerCaller?: number;
}

interface Reservation {
  caller: string;
  timer: NodeJS.Timeout;
}

const TOKEN_HEADER = 'x-graphql-event-stream-token';

/** The single-connection stream a request names (in its header or its URL), or null. */
export function streamTokenOf(request: Request): string | null {
  return request.headers.get(TOKEN_HEADER) ?? new URL(request.url, 'http://localhost/').searchParams.get('token');
}

/** Opening a reserved stream with an aborted request makes graphql-sse dispose of it, reservation and all. */
export async function freeReservedStream(
  handler: (request: Request) => Promise<Response>,
  RequestClass: typeof Request,
  url: string,
  streamToken: string,
): Promise<void> {
  const headers = { accept: 'text/event-stream', [TOKEN_HEADER]: streamToken };
  await handler(new RequestClass(url, { headers, signal: AbortSignal.abort() }));
}

function refusal(status: number, message: string, code: string): Refusal {
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  return [body, { status, statusText: code, headers: { 'content-type': 'application/json; charset=utf-8' } }];
}

export class StreamReservations {
  readonly #byToken = new Map<string, Reservation>();
  readonly #countByCaller = new Map<string, number>();
  // expired reservations being freed through the library's own request path
  readonly #freeing = new Set<string>();
  readonly #ttlMs: number;
  readonly #maxPerCaller: number;

  constructor(private readonly options: StreamReservationsOptions) {
    this.#ttlMs = options.ttlMs ?? RESERVATION_TTL_MS;
    this.#maxPerCaller = options.maxPerCaller ?? MAX_RESERVATIONS_PER_CALLER;
  }

  /** unopened reservations held now */
  get size(): number {
    return this.#byToken.size;
  }

  /**
   * graphql-sse's `authenticate`: the stream token the request names or reserves, undefined for a
   * distinct-connection request (authorised per operation like /graphql), or the refusal to answer.
   */
  authenticate(request: Request): string | undefined | Refusal {
    const named = streamTokenOf(request);
    if (named === null && request.method !== 'PUT') return undefined;
    if (named !== null && this.#freeing.has(named)) return named;
    const caller = this.options.caller(request);
    if (caller === undefined) return refusal(401, 'missing or invalid token', 'UNAUTHENTICATED');
    if (named === null) return this.#reserve(caller);
    // The server names the stream; a client-chosen token would reserve past the count and the expiry.
    if (request.method === 'PUT') return refusal(400, 'a stream token is assigned by the server: PUT without one', 'BAD_REQUEST');
    const reservation = this.#byToken.get(named);
    // Another credential's stream is answered as one that does not exist.
    if (reservation !== undefined && reservation.caller !== caller) return refusal(404, 'no such stream', 'NOT_FOUND');
    const opening = request.method === 'GET' && request.headers.get('accept') === 'text/event-stream';
    if (reservation !== undefined && opening) this.#release(named);
    return named;
  }

  #reserve(caller: string): string | Refusal {
    const held = this.#countByCaller.get(caller) ?? 0;
    if (held >= this.#maxPerCaller) {
      return refusal(429, `this token already holds ${held} unopened stream reservations; open or let them expire`, 'RATE_LIMITED');
    }
    const token = randomUUID();
    const timer = setTimeout(() => {
      this.#release(token);
      this.#freeing.add(token);
      Promise.resolve(this.options.free(token)).finally(() => this.#freeing.delete(token));
    }, this.#ttlMs);
    timer.unref();
    this.#byToken.set(token, { caller, timer });
    this.#countByCaller.set(caller, held + 1);
    return token;
  }

  #release(token: string): void {
    const reservation = this.#byToken.get(token);
    if (reservation === undefined) return;
    clearTimeout(reservation.timer);
    this.#byToken.delete(token);
    const left = (this.#countByCaller.get(reservation.caller) ?? 1) - 1;
    if (left === 0) this.#countByCaller.delete(reservation.caller);
    else this.#countByCaller.set(reservation.caller, left);
  }

  /** ends every pending expiry (the server is closing) */
  close(): void {
    for (const token of [...this.#byToken.keys()]) this.#release(token);
  }
}
