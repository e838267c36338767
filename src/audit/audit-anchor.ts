import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { anchorMismatch, type AnchoredHead } from './audit-chain.js';
import {
  readCheckpointChain, sealCheckpoint, type AnchoredBreaker, type Checkpoint, type CheckpointEntry, type CheckpointLink,
} from './audit-checkpoint.js';
import type { AuditEvent, ChainHead } from './audit-event.js';
import type { AuditBatch, AuditStore, BreakerStateRow } from './audit-store.js';

export interface AuditAnchorOptions {
  key: Buffer;
  /** the file keeping the newest checkpoint's link, outside ClickHouse */
  anchorFile: string;
  now?: () => number;
  onCheckpoint?: (checkpoint: Checkpoint, tenants: number) => void;
  onCheckpointError?: (error: Error) => void;
}

/** A tenant whose stored history contradicts its signed checkpoint. */
export interface IntegrityFinding {
  tenantId: string;
  problem: string;
  checkpoint: number;
  anchoredSeq: number;
}

/** A breaker open in the checkpoint whose stored state cannot be trusted: it is kept as the checkpoint had it. */
export interface KeptBreaker extends AnchoredBreaker {
  tenantId: string;
  checkpoint: number;
  why: string;
}

/** What the start-up check found. */
export interface AnchorReport {
  checkpoints: number;
  /** the checkpoint chain or the anchor file fails verification */
  chainProblem?: string;
  /** checkpoints exist but there is no anchor file (a new host on an old ClickHouse, or the file was removed) */
  unconfirmed?: boolean;
  tenants: IntegrityFinding[];
  kept: KeptBreaker[];
}

type Anchored = CheckpointEntry & { checkpoint: number };

/** What reading the checkpoint chain found: valid checkpoints, and any problem. */
type Reading = { valid: number; problem?: string; unconfirmed?: boolean };

/**
 * Checkpoints the confirmed heads of the audit chains: what the audit writer reports written is
 * collected per tenant, and `checkpoint()` signs the tenants that moved into the next link of the
 * checkpoint chain, then the anchor file. At start it reads the chain back and checks each tenant's
 * stored history against its newest anchored head and breakers.
 */
export class AuditAnchor {
  readonly #store: AuditStore;
  readonly #o: AuditAnchorOptions;
  readonly #anchored: Map<string, Anchored>;
  #tail: ChainHead;
  readonly #reading: Reading;
  /** confirmed heads and open breakers of the tenants that moved since the last checkpoint */
  readonly #heads = new Map<string, ChainHead>();
  readonly #open = new Map<string, Map<string, AnchoredBreaker>>();
  readonly #dirty = new Set<string>();
  /** sealed and not yet confirmed written */
  #pending: { checkpoint: Checkpoint; entries: CheckpointEntry[] } | undefined;
  #writing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;

  private constructor(store: AuditStore, options: AuditAnchorOptions, anchored: Map<string, Anchored>, tail: ChainHead, reading: Reading) {
    this.#store = store;
    this.#o = options;
    this.#anchored = anchored;
    this.#tail = tail;
    this.#reading = reading;
  }

  /** Where a data directory keeps the anchor file. */
  static fileIn(dataDir: string): string {
    return join(dataDir, 'audit-anchor.json');
  }

  /** Reads and verifies the checkpoint chain and the anchor file. */
  static async open(store: AuditStore, options: AuditAnchorOptions): Promise<AuditAnchor> {
    const file = readAnchorFile(options.anchorFile);
    const reading = readCheckpointChain(await store.checkpoints(), file.link, options.key);
    const problem = file.problem ?? reading.problem;
    return new AuditAnchor(store, options, reading.anchored, reading.tail, {
      valid: reading.valid,
      ...(problem === undefined ? {} : { problem }),
      ...(reading.unconfirmed && file.problem === undefined ? { unconfirmed: true } : {}),
    });
  }

  anchoredHead(tenantId: string): AnchoredHead | undefined {
    const entry = this.#anchored.get(tenantId);
    return entry === undefined ? undefined : { seq: entry.seq, hash: entry.hash, checkpoint: entry.checkpoint };
  }

  /** Every tenant's anchored head: a chain whose events were deleted continues after it, keeping the gap visible. */
  anchoredHeads(): Map<string, AnchoredHead> {
    return new Map([...this.#anchored.keys()].map((tenantId) => [tenantId, this.anchoredHead(tenantId)!]));
  }

  /**
   * Checks every anchored tenant's stored history: the event at its anchored Seq must be stored with
   * the anchored hash, and each breaker open in its checkpoint must still be open in `openBreakers`
   * or closed by a later event of its chain. Breakers that are neither are returned to be kept.
   */
  async check(openBreakers: readonly BreakerStateRow[]): Promise<AnchorReport> {
    const entries = [...this.#anchored.values()];
    const stored = await this.#store.eventsAt(entries.filter((e) => e.seq > 0).map((e) => ({ tenantId: e.tenantId, seq: e.seq })));
    const at = new Map(stored.map((event) => [event.tenantId, event]));
    const open = new Set(openBreakers.map((row) => breakerId(row.tenantId, row)));
    const tenants: IntegrityFinding[] = [];
    const kept: KeptBreaker[] = [];
    for (const entry of entries) {
      const problem = anchorMismatch({ seq: entry.seq, hash: entry.hash, checkpoint: entry.checkpoint }, at.get(entry.tenantId));
      if (problem !== undefined) tenants.push({ tenantId: entry.tenantId, problem, checkpoint: entry.checkpoint, anchoredSeq: entry.seq });
      for (const breaker of entry.breakers) {
        if (open.has(breakerId(entry.tenantId, breaker))) continue;
        const why = problem !== undefined
          ? "its tenant's audit history failed verification"
          : await this.#closedLater(entry.tenantId, breaker);
        if (why !== undefined) kept.push({ ...breaker, tenantId: entry.tenantId, checkpoint: entry.checkpoint, why });
      }
    }
    return {
      checkpoints: this.#reading.valid,
      ...(this.#reading.problem === undefined ? {} : { chainProblem: this.#reading.problem }),
      ...(this.#reading.unconfirmed ? { unconfirmed: true } : {}),
      tenants,
      kept,
    };
  }

  /**
   * Starts collecting from the store's current heads and open breakers; tenants whose head is not
   * the anchored one (new, moved since the last checkpoint, or never checkpointed) go in the next.
   */
  seed(heads: ReadonlyMap<string, ChainHead>, openBreakers: readonly BreakerStateRow[]): void {
    this.#open.clear();
    for (const row of openBreakers) this.#openOf(row.tenantId).set(breakerId('', row), anchoredBreaker(row));
    for (const [tenantId, head] of heads) {
      const anchored = this.#anchored.get(tenantId);
      if (anchored !== undefined && anchored.seq === head.seq && anchored.hash === head.hash) continue;
      this.#heads.set(tenantId, head);
      this.#dirty.add(tenantId);
    }
  }

  /** What the audit writer confirmed written; a write of what is already anchored (a replay's repair) changes nothing. */
  observe(batch: Pick<AuditBatch, 'heads' | 'breakerStates'>): void {
    for (const [tenantId, head] of batch.heads) {
      const known = this.#heads.get(tenantId) ?? this.#anchored.get(tenantId);
      if (known !== undefined && (known.seq > head.seq || (known.seq === head.seq && known.hash === head.hash))) continue;
      this.#heads.set(tenantId, { seq: head.seq, hash: head.hash });
      this.#dirty.add(tenantId);
    }
    for (const row of batch.breakerStates) {
      const id = breakerId('', row);
      const known = this.#open.get(row.tenantId)?.get(id) ?? this.#anchored.get(row.tenantId)?.breakers.find((b) => breakerId('', b) === id);
      if (known === undefined ? row.state === 'CLOSED' : known.seq >= row.seq) continue;
      const open = this.#openOf(row.tenantId);
      if (row.state === 'CLOSED') open.delete(id);
      else open.set(id, anchoredBreaker(row));
      this.#dirty.add(row.tenantId);
    }
  }

  /** Checkpoints every ms until close(). */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.checkpoint(), intervalMs);
    this.#timer.unref();
  }

  /** Signs the tenants that moved since the last checkpoint into the next one; nothing when none did. */
  checkpoint(): Promise<void> {
    this.#writing = this.#writing.then(() => this.#write());
    return this.#writing;
  }

  /** Stops the timer and writes a last checkpoint. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.checkpoint();
  }

  async #write(): Promise<void> {
    if (this.#pending === undefined) {
      if (this.#dirty.size === 0) return;
      const entries: CheckpointEntry[] = [];
      for (const tenantId of this.#dirty) {
        const head = this.#heads.get(tenantId) ?? this.#anchored.get(tenantId);
        if (head === undefined) continue; // breaker rows without a confirmed head: the head comes in the same batch
        entries.push({ tenantId, seq: head.seq, hash: head.hash, breakers: [...(this.#open.get(tenantId)?.values() ?? [])] });
      }
      this.#dirty.clear();
      this.#pending = { checkpoint: sealCheckpoint(this.#tail, entries, (this.#o.now ?? Date.now)(), this.#o.key), entries };
    }
    // a failed write may have landed: the same checkpoint is written again, never another with its Seq
    const { checkpoint, entries } = this.#pending;
    try {
      await this.#store.writeCheckpoint(checkpoint);
      writeAnchorFile(this.#o.anchorFile, { seq: checkpoint.seq, hash: checkpoint.hash, mac: checkpoint.mac });
    } catch (err) {
      this.#o.onCheckpointError?.(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.#pending = undefined;
    this.#tail = { seq: checkpoint.seq, hash: checkpoint.hash };
    for (const entry of entries) {
      this.#anchored.set(entry.tenantId, { ...entry, checkpoint: checkpoint.seq });
      // a head observed while this checkpoint was written waits for the next one
      if (this.#heads.get(entry.tenantId)?.seq === entry.seq) this.#heads.delete(entry.tenantId);
    }
    this.#o.onCheckpoint?.(checkpoint, entries.length);
  }

  /** undefined when a later event of the tenant's chain closed the breaker; else why it is kept. */
  async #closedLater(tenantId: string, breaker: AnchoredBreaker): Promise<string | undefined> {
    const events = await this.#store.list(tenantId, { runId: breaker.runId, order: 'desc', limit: 1_000 });
    const newest = events.find((event) => event.seq > breaker.seq && event.scope === breaker.scope && breakerStateIn(event) !== undefined);
    if (newest !== undefined && breakerStateIn(newest) === 'CLOSED') return undefined;
    return 'its stored state is gone, and no later audit event closed it';
  }

  #openOf(tenantId: string): Map<string, AnchoredBreaker> {
    let open = this.#open.get(tenantId);
    if (open === undefined) this.#open.set(tenantId, (open = new Map()));
    return open;
  }
}

function anchoredBreaker(row: BreakerStateRow): AnchoredBreaker {
  return { scope: row.scope, runId: row.runId, state: row.state, snapshot: row.snapshot, seq: row.seq };
}

function breakerId(tenantId: string, breaker: { scope: string; runId: string }): string {
  return `${tenantId}\u0000${breaker.scope}\u0000${breaker.runId}`;
}

function breakerStateIn(event: AuditEvent): string | undefined {
  try {
    const state: unknown = (JSON.parse(event.details) as { breaker?: { state?: unknown } }).breaker?.state;
    return typeof state === 'string' ? state : undefined;
  } catch {
    return undefined;
  }
}

function readAnchorFile(path: string): { link: CheckpointLink | null; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { link: null };
    return { link: null, problem: `the audit anchor file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const value = JSON.parse(text) as Partial<CheckpointLink>;
    if (Number.isSafeInteger(value.seq) && typeof value.hash === 'string' && typeof value.mac === 'string') {
      return { link: { seq: value.seq!, hash: value.hash, mac: value.mac } };
    }
  } catch {
    // reported below
  }
  return { link: null, problem: `the audit anchor file ${path} is not a checkpoint link: damaged or replaced` };
}

function writeAnchorFile(path: string, link: CheckpointLink): void {
  // write then rename: a crash mid-write leaves the previous link, never half of one
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(link)}\n`, { mode: 0o600 });
  renameSync(temporary, path);
}
