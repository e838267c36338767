// Who holds which live subscriptions. Without it one WebSocket could hold tens of thousands, one
// token could spread unbounded ones over many connections and both transports, and a token removed
// from the policy kept receiving decisions on the subscriptions it had opened.
import { tooManySubscriptions, tokenRevoked } from './errors.js';
import type { RefusalLog } from '../app/refusal-log.js';

export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION = 100;
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_TOKEN = 1000;

export interface SubscriptionLimits {
  perConnection: number;
  perToken: number;
}

/** Whose a subscription is. */
export interface SubscriptionOwner {
  /** the transport connection: a WebSocket, a graphql-sse stream token, or an HTTP socket */
  connection: object | string;
  /** a stable key of the credential, the same on every transport (never the token itself) */
  credential: string;
  /** whether the credential still names the principal the subscription was opened with */
  stillValid: () => boolean;
  /** whose credential it is, for the refusal log: the tenant (null for a platform admin) and the token's configured name */
  holder?: { tenantId: string | null; name: string };
}

interface Live {
  owner: SubscriptionOwner;
  /** frees its place and ends it with TOKEN_REVOKED at its next read */
  revoke: () => void;
}

export class SubscriptionRegistry {
  readonly #live = new Set<Live>();
  readonly #byConnection = new Map<object | string, number>();
  readonly #byCredential = new Map<string, number>();

  constructor(
    private readonly limits: SubscriptionLimits,
    private readonly refusals?: Pick<RefusalLog, 'refused'>,
  ) {}

  /** live subscriptions now */
  get size(): number {
    return this.#live.size;
  }

  /**
   * The subscription `start` opens, counted for `owner` until it ends; throws TOO_MANY_SUBSCRIPTIONS
   * (before `start` runs) when the connection or the credential is at its limit. A revoked one
   * yields a TOKEN_REVOKED error as its `field` and ends.
   */
  open<T>(owner: SubscriptionOwner, field: string, start: () => AsyncIterableIterator<T>): AsyncIterableIterator<T | Record<string, Error>> {
    const onConnection = this.#byConnection.get(owner.connection) ?? 0;
    if (onConnection >= this.limits.perConnection) {
      this.#refused(owner, 'subscriptions_per_connection', onConnection);
      throw tooManySubscriptions('connection', onConnection);
    }
    const ofCredential = this.#byCredential.get(owner.credential) ?? 0;
    if (ofCredential >= this.limits.perToken) {
      this.#refused(owner, 'subscriptions_per_token', ofCredential);
      throw tooManySubscriptions('token', ofCredential);
    }
    const source = start();
    let state: 'open' | 'revoked' | 'done' = 'open';
    // The pending read's way out when the token is revoked (no lasting promise: reads are many).
    let interrupt: (() => void) | undefined;
    const live: Live = {
      owner,
      revoke: () => {
        if (state !== 'open') return;
        state = 'revoked';
        this.#release(live);
        interrupt?.();
      },
    };
    this.#live.add(live);
    this.#byConnection.set(owner.connection, onConnection + 1);
    this.#byCredential.set(owner.credential, ofCredential + 1);
    const end = () => {
      state = 'done';
      this.#release(live);
    };
    /** The revocation, as the subscription's last result. */
    const revocation = (): IteratorResult<T | Record<string, Error>> => {
      end();
      void source.return?.();
      return { done: false, value: { [field]: tokenRevoked() } };
    };
    return {
      next() {
        if (state === 'revoked') return Promise.resolve(revocation());
        if (state === 'done') return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve, reject) => {
          interrupt = () => resolve(revocation());
          source.next().then(
            (result) => {
              interrupt = undefined;
              if (result.done) end();
              resolve(result);
            },
            (error: unknown) => {
              // an overflowing reader: the transport ends the subscription without calling return()
              interrupt = undefined;
              end();
              reject(error instanceof Error ? error : new Error(String(error)));
            },
          );
        });
      },
      async return() {
        end();
        await source.return?.();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  #refused(owner: SubscriptionOwner, reason: 'subscriptions_per_connection' | 'subscriptions_per_token', held: number): void {
    this.refusals?.refused(owner.holder?.tenantId ?? null, reason, { subscriptions: 1 }, { token: owner.holder?.name ?? 'unknown', held });
  }

  /** Ends every subscription whose credential no longer holds (after a policy reload); returns how many. */
  revalidate(): number {
    let ended = 0;
    for (const live of [...this.#live]) {
      if (live.owner.stillValid()) continue;
      live.revoke();
      ended++;
    }
    return ended;
  }

  #release(live: Live): void {
    if (!this.#live.delete(live)) return;
    decrement(this.#byConnection, live.owner.connection);
    decrement(this.#byCredential, live.owner.credential);
  }
}

function decrement<K>(counts: Map<K, number>, key: K): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left <= 0) counts.delete(key);
  else counts.set(key, left);
}
