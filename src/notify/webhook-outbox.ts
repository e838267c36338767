// The webhook queues on disk: each notification is written, with the endpoints it is owed to,
// before any endpoint is asked to send it, and each endpoint's outcome (delivered, given up,
// dropped) is written after. A restart resends what is still owed, so a kill mid-retry loses
// nothing; a receiver may see a notification twice and dedupes on its id.

import { join } from 'node:path';
import type { Logger } from '../app/log.js';
import { WriteAheadLog } from '../audit/write-ahead-log.js';
import { NOTIFICATION_TYPES, type Notification } from './notification-event.js';

type OutboxRecord = { t: 'n'; n: Notification; to: string[] } | { t: 's'; of: number; to: string };

/** A notification some endpoints have not settled yet, by their policy paths. */
export interface OwedNotification {
  id: number;
  notification: Notification;
  endpoints: string[];
}

export class WebhookOutbox {
  readonly #wal: WriteAheadLog;
  readonly #log: Pick<Logger, 'error'>;
  /** outbox id → endpoints still owed; ids only grow, so the first key is the oldest */
  readonly #owed = new Map<number, Set<string>>();
  #lastId = 0;
  #syncScheduled = false;
  #broken = false;

  private constructor(wal: WriteAheadLog, log: Pick<Logger, 'error'>) {
    this.#wal = wal;
    this.#log = log;
  }

  static dirIn(dataDir: string): string {
    return join(dataDir, 'webhook-outbox');
  }

  /** Opens the outbox, returning what the previous process still owed (oldest first) and how many records were not readable. */
  static open(dir: string, log: Pick<Logger, 'error'>): { outbox: WebhookOutbox; owed: OwedNotification[]; unreadable: number } {
    const { wal, records } = WriteAheadLog.open(dir, { segmentBytes: 1024 * 1024 });
    const outbox = new WebhookOutbox(wal, log);
    const notifications = new Map<number, Notification>();
    let unreadable = 0;
    for (const { id, value } of records) {
      outbox.#lastId = id;
      const record = value as OutboxRecord;
      if (isOwedRecord(record)) {
        notifications.set(id, record.n);
        outbox.#owed.set(id, new Set(record.to));
      } else if (isSettledRecord(record)) {
        outbox.#forget(record.of, record.to);
      } else unreadable++;
    }
    const owed = [...outbox.#owed].map(([id, endpoints]) => ({ id, notification: notifications.get(id)!, endpoints: [...endpoints] }));
    outbox.#release();
    return { outbox, owed, unreadable };
  }

  /** Records a notification owed to `endpoints`; undefined when the disk refused it (it is then sent from memory only). */
  add(notification: Notification, endpoints: string[]): number | undefined {
    const id = this.#append({ t: 'n', n: notification, to: endpoints });
    if (id !== undefined) this.#owed.set(id, new Set(endpoints));
    return id;
  }

  /** `endpoint` is done with notification `id`: delivered, given up or dropped. */
  settle(id: number | undefined, endpoint: string): void {
    if (id === undefined || !this.#owed.get(id)?.has(endpoint)) return;
    this.#append({ t: 's', of: id, to: endpoint });
    this.#forget(id, endpoint);
    this.#release();
  }

  /** Notifications some endpoint still owes. */
  get owed(): number {
    return this.#owed.size;
  }

  close(): void {
    this.#wal.close();
  }

  #forget(id: number, endpoint: string): void {
    const endpoints = this.#owed.get(id);
    if (endpoints === undefined) return;
    endpoints.delete(endpoint);
    if (endpoints.size === 0) this.#owed.delete(id);
  }

  #release(): void {
    const oldest = this.#owed.keys().next();
    this.#wal.release(oldest.done ? this.#lastId : oldest.value - 1);
  }

  #append(record: OutboxRecord): number | undefined {
    try {
      const id = this.#wal.append(record);
      this.#lastId = id;
      this.#syncSoon();
      return id;
    } catch (err) {
      // Delivery goes on from memory; only survival across a restart is lost, and that is said once.
      if (!this.#broken) this.#log.error({ error: (err as Error).message }, 'webhook outbox not writable: notifications are sent but not kept across a restart');
      this.#broken = true;
      return undefined;
    }
  }

  /** One fdatasync per burst, off the event loop: appends already survive a killed process; this covers power loss. */
  #syncSoon(): void {
    if (this.#syncScheduled) return;
    this.#syncScheduled = true;
    setImmediate(() => {
      this.#syncScheduled = false;
      this.#wal.sync().catch((err: Error) => this.#log.error({ error: err.message }, 'webhook outbox sync failed'));
    }).unref();
  }
}

const TYPES = new Set<string>(NOTIFICATION_TYPES);

function isOwedRecord(r: OutboxRecord): r is Extract<OutboxRecord, { t: 'n' }> {
  if (r === null || typeof r !== 'object' || r.t !== 'n') return false;
  const { n, to } = r;
  return (
    n !== null && typeof n === 'object' && typeof n.id === 'string' && typeof n.tenantId === 'string' && TYPES.has(n.type) &&
    Array.isArray(to) && to.every((e) => typeof e === 'string')
  );
}

function isSettledRecord(r: OutboxRecord): r is Extract<OutboxRecord, { t: 's' }> {
  return r !== null && typeof r === 'object' && r.t === 's' && Number.isInteger(r.of) && typeof r.to === 'string';
}
