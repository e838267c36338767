// Signed checkpoints anchor the tenants' audit chains outside the tables they protect. Each
// checkpoint lists the tenants whose chain moved since the previous one (their head and their open
// breakers), links to the previous checkpoint by hash, and is signed with a key ClickHouse never
// holds; the newest link is also kept in a file beside the data. Someone able to write ClickHouse
// can delete or rewrite a tenant's events and head, but not the checkpoint that anchors them.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ChainHead } from './audit-event.js';

/** A breaker that was not CLOSED when its tenant was checkpointed. */
export interface AnchoredBreaker {
  scope: string;
  runId: string;
  state: string;
  /** the breaker snapshot as JSON text */
  snapshot: string;
  /** the audit event that set it */
  seq: number;
}

/** One tenant in a checkpoint: the head of its chain then, and its open breakers. */
export interface CheckpointEntry {
  tenantId: string;
  seq: number;
  hash: string;
  breakers: AnchoredBreaker[];
}

/** A checkpoint as stored: Body is the canonical JSON of its time and entries. */
export interface Checkpoint {
  seq: number;
  at: number;
  prevHash: string;
  body: string;
  hash: string;
  mac: string;
}

/** The newest checkpoint's link, as the anchor file keeps it. */
export interface CheckpointLink {
  seq: number;
  hash: string;
  mac: string;
}

const GENESIS_LINK: ChainHead = Object.freeze({ seq: 0, hash: '' });

export function checkpointHash(seq: number, prevHash: string, body: string): string {
  return createHash('sha256').update(`${prevHash}\n${seq}\n${body}`).digest('hex');
}

export function checkpointMac(key: Buffer, hash: string): string {
  return createHmac('sha256', key).update(hash).digest('hex');
}

/** The checkpoint after `previous` holding `entries`, hashed and signed. */
export function sealCheckpoint(previous: ChainHead, entries: readonly CheckpointEntry[], at: number, key: Buffer): Checkpoint {
  const sorted = [...entries]
    .sort((a, b) => compare(a.tenantId, b.tenantId))
    .map((entry) => ({ ...entry, breakers: [...entry.breakers].sort((a, b) => compare(`${a.scope}\u0000${a.runId}`, `${b.scope}\u0000${b.runId}`)) }));
  const body = JSON.stringify({ at, entries: sorted });
  const seq = previous.seq + 1;
  const hash = checkpointHash(seq, previous.hash, body);
  return { seq, at, prevHash: previous.hash, body, hash, mac: checkpointMac(key, hash) };
}

export interface CheckpointChainReading {
  /** each tenant's newest entry in the valid checkpoints */
  anchored: Map<string, CheckpointEntry & { checkpoint: number }>;
  /** valid checkpoints read */
  valid: number;
  /** where the next checkpoint links: past everything stored or anchored, so a deletion stays visible */
  tail: ChainHead;
  /** why the chain or the anchor file fails verification */
  problem?: string;
  /** checkpoints exist but no anchor file confirms the newest */
  unconfirmed?: boolean;
}

/**
 * Verifies the checkpoints (in Seq order) against the key and the anchor file's link, and folds the
 * valid prefix into each tenant's newest anchored entry.
 */
export function readCheckpointChain(checkpoints: readonly Checkpoint[], anchor: CheckpointLink | null, key: Buffer): CheckpointChainReading {
  const anchored: CheckpointChainReading['anchored'] = new Map();
  let previous: ChainHead = GENESIS_LINK;
  let problem: string | undefined;
  let valid = 0;
  const hashAt = new Map<number, string>();
  for (const checkpoint of checkpoints) {
    if (checkpoint.seq === previous.seq && checkpoint.hash === previous.hash) continue; // a retried insert
    problem = checkpointProblem(checkpoint, previous, key);
    if (problem !== undefined) break;
    for (const entry of parseEntries(checkpoint.body)) anchored.set(entry.tenantId, { ...entry, checkpoint: checkpoint.seq });
    hashAt.set(checkpoint.seq, checkpoint.hash);
    previous = { seq: checkpoint.seq, hash: checkpoint.hash };
    valid++;
  }
  const stored = checkpoints.at(-1);
  let tail: ChainHead = stored === undefined || stored.seq <= previous.seq ? previous : { seq: stored.seq, hash: stored.hash };
  if (anchor === null) {
    return { anchored, valid, tail, ...(problem === undefined ? {} : { problem }), ...(checkpoints.length > 0 ? { unconfirmed: true } : {}) };
  }
  if (anchor.seq > tail.seq) tail = { seq: anchor.seq, hash: anchor.hash };
  problem ??= anchorProblem(anchor, previous, hashAt, key);
  return { anchored, valid, tail, ...(problem === undefined ? {} : { problem }) };
}

function checkpointProblem(checkpoint: Checkpoint, previous: ChainHead, key: Buffer): string | undefined {
  const expected = previous.seq + 1;
  if (checkpoint.seq !== expected) {
    return checkpoint.seq > expected
      ? `audit checkpoint${checkpoint.seq - expected > 1 ? `s #${expected}..#${checkpoint.seq - 1} are` : ` #${expected} is`} missing: deleted`
      : `audit checkpoint #${checkpoint.seq} appears twice: one was inserted`;
  }
  if (checkpoint.prevHash !== previous.hash) return `audit checkpoint #${checkpoint.seq} does not link to #${previous.seq}: replaced or inserted`;
  if (checkpointHash(checkpoint.seq, checkpoint.prevHash, checkpoint.body) !== checkpoint.hash) return `audit checkpoint #${checkpoint.seq} does not match its hash: modified`;
  if (!sameHex(checkpointMac(key, checkpoint.hash), checkpoint.mac)) return `audit checkpoint #${checkpoint.seq} is not signed with the audit key: forged, or the key changed`;
  return undefined;
}

function anchorProblem(anchor: CheckpointLink, newest: ChainHead, hashAt: ReadonlyMap<number, string>, key: Buffer): string | undefined {
  if (!sameHex(checkpointMac(key, anchor.hash), anchor.mac)) return 'the audit anchor file is not signed with the audit key: forged, or the key changed';
  if (anchor.seq > newest.seq) {
    return `the anchor file names audit checkpoint #${anchor.seq} but the newest stored is #${newest.seq}: the newest checkpoints were deleted`;
  }
  if (hashAt.get(anchor.seq) !== anchor.hash) return `audit checkpoint #${anchor.seq} differs from the anchor file: rewritten`;
  return undefined;
}

function parseEntries(body: string): CheckpointEntry[] {
  // The body is signed, so it was written by Breakwater: its shape is ours.
  return (JSON.parse(body) as { entries: CheckpointEntry[] }).entries;
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
