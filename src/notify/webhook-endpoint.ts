// One webhook endpoint: a bounded queue of notifications delivered one at a time, in order, each
// retried with exponential backoff and jitter until acknowledged or given up. Nothing here is
// awaited by the decision path: enqueue() only pushes.

import type { WebhookEndpointConfig, DeliverySettings } from './webhook-config.js';
import { slackPayload, type Notification } from './notification-event.js';
import { SIGNATURE_HEADER, signatureHeader } from './webhook-signer.js';

/** A notification waiting on an endpoint, with its place in the outbox (undefined: kept in memory only). */
export interface QueuedNotification {
  notification: Notification;
  outboxId: number | undefined;
}

export interface EndpointHooks {
  delivered(endpoint: WebhookEndpointConfig, q: QueuedNotification, attempts: number): void;
  failed(endpoint: WebhookEndpointConfig, q: QueuedNotification, attempts: number, why: string): void;
  dropped(endpoint: WebhookEndpointConfig, q: QueuedNotification): void;
  retried(endpoint: WebhookEndpointConfig, q: QueuedNotification, why: string, delayMs: number): void;
}

type Outcome = { ok: true } | { ok: false; retry: boolean; why: string; retryAfterMs?: number };

export class WebhookEndpoint {
  #config: WebhookEndpointConfig;
  #settings: DeliverySettings;
  readonly #hooks: EndpointHooks;
  readonly #waiting: QueuedNotification[] = [];
  readonly #stop = new AbortController();
  #running = false;
  #inFlight: QueuedNotification | undefined;

  constructor(config: WebhookEndpointConfig, settings: DeliverySettings, hooks: EndpointHooks) {
    this.#config = config;
    this.#settings = settings;
    this.#hooks = hooks;
  }

  get config(): WebhookEndpointConfig {
    return this.#config;
  }

  /** A reloaded policy's settings: the next attempt uses them (the URL and secret included). */
  reconfigure(config: WebhookEndpointConfig, settings: DeliverySettings): void {
    this.#config = config;
    this.#settings = settings;
    this.#trim();
  }

  enqueue(q: QueuedNotification): void {
    if (this.#stop.signal.aborted) return;
    this.#waiting.push(q);
    this.#trim();
    if (!this.#running) void this.#run();
  }

  /** Notifications not yet acknowledged, the one being sent included. */
  get pending(): number {
    return this.#waiting.length + (this.#inFlight ? 1 : 0);
  }

  /** Stops sending (an attempt under way is aborted); returns what was left undelivered, oldest first. */
  stop(): QueuedNotification[] {
    const left = this.#inFlight === undefined ? [...this.#waiting] : [this.#inFlight, ...this.#waiting];
    this.#stop.abort();
    this.#waiting.length = 0;
    return left;
  }

  #trim(): void {
    while (this.#waiting.length > this.#settings.maxQueue) this.#hooks.dropped(this.#config, this.#waiting.shift()!);
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      for (let q = this.#waiting.shift(); q !== undefined && !this.#stop.signal.aborted; q = this.#waiting.shift()) {
        this.#inFlight = q;
        await this.#deliver(q);
        this.#inFlight = undefined;
      }
    } finally {
      this.#inFlight = undefined;
      this.#running = false;
    }
  }

  async #deliver(q: QueuedNotification): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#attempt(q.notification);
      // stopped mid-attempt: still owed, so the next start sends it again
      if (this.#stop.signal.aborted) return;
      if (outcome.ok) return this.#hooks.delivered(this.#config, q, attempt);
      if (!outcome.retry || attempt >= this.#settings.maxAttempts) return this.#hooks.failed(this.#config, q, attempt, outcome.why);
      const delayMs = this.#delay(attempt, outcome.retryAfterMs);
      this.#hooks.retried(this.#config, q, outcome.why, delayMs);
      await sleep(delayMs, this.#stop.signal);
    }
  }

  /** Exponential from backoffMs, with jitter (half to all of it) so endpoints coming back are not hit in step; Retry-After wins, both capped. */
  #delay(attempt: number, retryAfterMs: number | undefined): number {
    const { backoffMs, maxBackoffMs } = this.#settings;
    if (retryAfterMs !== undefined) return Math.min(maxBackoffMs, retryAfterMs);
    const exponential = Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 1));
    return Math.round(exponential * (0.5 + Math.random() * 0.5));
  }

  async #attempt(n: Notification): Promise<Outcome> {
    const { url, secret, format } = this.#config;
    const body = JSON.stringify(format === 'slack' ? slackPayload(n) : n);
    // signed at each attempt, so a retry is not refused by a receiver checking the timestamp's age
    const signature = signatureHeader(body, secret, Math.floor(Date.now() / 1000));
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'breakwater-webhooks',
          [SIGNATURE_HEADER]: signature,
          'breakwater-event-id': n.id,
          'breakwater-event-type': n.type,
        },
        body,
        // a redirect would send the event (and its signature) to an address the policy never named
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(this.#settings.timeoutMs), this.#stop.signal]),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return { ok: false, retry: true, why: e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.name) };
    }
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true };
    const retry = res.status >= 500 || res.status === 408 || res.status === 429;
    const retryAfterMs = retry ? parseRetryAfter(res.headers.get('retry-after')) : undefined;
    return { ok: false, retry, why: `HTTP ${res.status}`, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    // a pending retry must not keep the process alive on its own
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
