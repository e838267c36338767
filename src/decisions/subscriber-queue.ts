/** The subscriber read too slowly and lost messages that cannot be coalesced; it should resubscribe. */
export class SubscriberOverflowError extends Error {
  readonly code = 'SUBSCRIBER_OVERFLOW';
  constructor(capacity: number) {
    super(`subscriber fell more than ${capacity} messages behind; resubscribe to get the current state`);
    this.name = 'SubscriberOverflowError';
  }
}

/** What a subscriber holds: an async iterator, plus how far behind it is. */
export interface Subscription<T> extends AsyncIterableIterator<T> {
  /** messages waiting to be read */
  readonly pending: number;
  /** superseded messages dropped because the reader fell behind */
  readonly dropped: number;
}

export interface SubscriberQueueOptions<T> {
  /** most live messages held for a slow reader */
  capacity: number;
  /** messages yielded before live ones (the current state at subscribe time); not counted in capacity */
  initial?: readonly T[];
  /**
   * Messages with the same key supersede each other: when the buffer is full, the oldest message
   * that has a newer one with its key is dropped. Without it, a full buffer is an overflow.
   */
  keyOf?: (message: T) => string;
  /** called once when the reader stops (return(), throw() or overflow), to unsubscribe */
  onClose: () => void;
}

/**
 * One subscriber's bounded mailbox, read as an async iterator. Memory stays bounded whatever the
 * reader does: superseded messages are dropped first, and when nothing can be dropped without
 * losing the latest state of some key the reader gets a SubscriberOverflowError (a GraphQL client
 * reconnects and receives the current state again) instead of a silently stale view.
 */
export class SubscriberQueue<T> implements Subscription<T> {
  #initial: T[];
  #buffer: T[] = [];
  /** readers waiting in next() on an empty buffer, oldest first */
  #waiters: ((result: IteratorResult<T>) => void)[] = [];
  #closed = false;
  #failure: Error | null = null;
  #dropped = 0;

  constructor(private readonly options: SubscriberQueueOptions<T>) {
    this.#initial = [...(options.initial ?? [])];
  }

  get dropped(): number {
    return this.#dropped;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get pending(): number {
    return this.#initial.length + this.#buffer.length;
  }

  push(message: T): void {
    if (this.#closed) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter({ value: message, done: false });
      return;
    }
    if (this.#buffer.length >= this.options.capacity && !this.#dropSuperseded(message)) {
      this.#fail(new SubscriberOverflowError(this.options.capacity));
      return;
    }
    this.#buffer.push(message);
  }

  next(): Promise<IteratorResult<T>> {
    const initial = this.#initial.shift();
    if (initial !== undefined) return Promise.resolve({ value: initial, done: false });
    const buffered = this.#buffer.shift();
    if (buffered !== undefined) return Promise.resolve({ value: buffered, done: false });
    if (this.#failure) {
      const failure = this.#failure;
      this.#failure = null;
      return Promise.reject(failure);
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.#close();
    this.#initial = [];
    this.#buffer = [];
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.#close();
    this.#initial = [];
    this.#buffer = [];
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  /** Makes room for `incoming` by dropping the oldest superseded message; false when there is none. */
  #dropSuperseded(incoming: T): boolean {
    const keyOf = this.options.keyOf;
    if (!keyOf) return false;
    const incomingKey = keyOf(incoming);
    let index = this.#buffer.findIndex((m) => keyOf(m) === incomingKey);
    if (index < 0) index = this.#oldestSupersededIndex(keyOf);
    if (index < 0) return false;
    this.#buffer.splice(index, 1);
    this.#dropped++;
    return true;
  }

  #oldestSupersededIndex(keyOf: (message: T) => string): number {
    const seen = new Set<string>();
    let oldest = -1;
    for (let i = this.#buffer.length - 1; i >= 0; i--) {
      const key = keyOf(this.#buffer[i] as T);
      if (seen.has(key)) oldest = i;
      else seen.add(key);
    }
    return oldest;
  }

  #fail(error: Error): void {
    this.#failure = error;
    this.#initial = [];
    this.#buffer = [];
    this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter({ value: undefined, done: true });
    this.options.onClose();
  }
}
