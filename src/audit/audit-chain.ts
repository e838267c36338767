import { eventHash, type AuditEvent, type ChainHead } from './audit-event.js';

export interface ChainVerification {
  ok: boolean;
  /** events read */
  events: number;
  /** the first Seq found wrong (or missing) */
  firstBadSeq?: number;
  problem?: string;
}

/**
 * Checks one tenant's chain, fed in Seq order (page by page, so memory stays flat):
 * - a modified event no longer hashes to its Hash;
 * - a deleted event leaves a Seq gap (or, if Seqs were rewritten, a PrevHash that no longer matches);
 * - an inserted or reordered event repeats a Seq or breaks the PrevHash link.
 *
 * A hash chain alone cannot see the newest events deleted: what is left is still a valid chain.
 * `finish()` therefore compares the end of the chain with the head recorded separately on every
 * append (`audit_heads`), and with the head a signed checkpoint anchored, which someone able to
 * rewrite both tables and recompute every hash still cannot forge.
 */
export class ChainVerifier {
  readonly #anchor: AnchoredHead | undefined;
  /** the stored event at the anchored Seq, once read */
  #atAnchor: AuditEvent | undefined;
  #expectedSeq = 1;
  #prevHash = '';
  #events = 0;
  #last: ChainHead | null = null;
  #problem: { seq: number | undefined; problem: string } | null = null;

  constructor(anchor?: AnchoredHead) {
    this.#anchor = anchor;
  }

  add(event: AuditEvent): void {
    this.#events++;
    if (event.seq === this.#anchor?.seq && this.#atAnchor === undefined) this.#atAnchor = event;
    if (this.#problem === null) this.#problem = this.#check(event);
    this.#expectedSeq = Math.max(this.#expectedSeq, event.seq + 1);
    this.#prevHash = event.hash;
    this.#last = { seq: event.seq, hash: event.hash };
  }

  /** `head` is the recorded latest Seq and Hash of the tenant, or null when none is recorded. */
  finish(head: ChainHead | null): ChainVerification {
    const anchored = this.#anchor === undefined ? undefined : anchorMismatch(this.#anchor, this.#atAnchor);
    const problem = this.#problem ?? this.#checkHead(head) ?? (anchored === undefined ? null : { seq: this.#anchor!.seq, problem: anchored });
    if (problem === null) return { ok: true, events: this.#events };
    return {
      ok: false,
      events: this.#events,
      ...(problem.seq === undefined ? {} : { firstBadSeq: problem.seq }),
      problem: problem.problem,
    };
  }

  #check(event: AuditEvent): { seq: number; problem: string } | null {
    const expected = this.#expectedSeq;
    if (event.seq < expected) {
      return { seq: event.seq, problem: `Seq ${event.seq} appears again after Seq ${expected - 1}: an event was inserted or reordered` };
    }
    if (event.seq > expected) {
      const missing = event.seq - 1 === expected ? `event ${expected} is` : `events ${expected}..${event.seq - 1} are`;
      return { seq: expected, problem: `${missing} missing: deleted` };
    }
    if (event.prevHash !== this.#prevHash) {
      return {
        seq: event.seq,
        problem: `PrevHash of event ${event.seq} does not match the Hash of event ${expected - 1}: an event was replaced, inserted or reordered`,
      };
    }
    if (eventHash(event.prevHash, event) !== event.hash) {
      return { seq: event.seq, problem: `event ${event.seq} does not match its Hash: it was modified` };
    }
    return null;
  }

  #checkHead(head: ChainHead | null): { seq: number | undefined; problem: string } | null {
    const last = this.#last;
    if (head === null || head.seq === 0) {
      return last === null ? null : { seq: undefined, problem: `no audit head is recorded for a chain of ${this.#events} events` };
    }
    if (last === null) return { seq: 1, problem: `the head records Seq ${head.seq} but no events are stored: all deleted` };
    if (head.seq > last.seq) {
      const missing = head.seq === last.seq + 1 ? `event ${head.seq} is` : `events ${last.seq + 1}..${head.seq} are`;
      return { seq: last.seq + 1, problem: `${missing} missing: the newest events were deleted` };
    }
    if (head.seq < last.seq) {
      return {
        seq: head.seq + 1,
        problem: `events after Seq ${head.seq} are not in the recorded head: appended outside Breakwater, or a crash between the event and its head`,
      };
    }
    if (head.hash !== last.hash) return { seq: last.seq, problem: `event ${last.seq} does not match the recorded head Hash` };
    return null;
  }
}

/** A tenant's head as a signed checkpoint recorded it. */
export interface AnchoredHead extends ChainHead {
  /** the checkpoint's Seq */
  checkpoint: number;
}

/** Why the stored event at the anchored Seq (undefined: none stored) contradicts the checkpoint, or undefined. */
export function anchorMismatch(anchor: AnchoredHead, stored: Pick<AuditEvent, 'hash'> | undefined): string | undefined {
  if (anchor.seq === 0) return undefined;
  if (stored === undefined) return `event ${anchor.seq}, anchored by signed checkpoint #${anchor.checkpoint}, is missing: deleted`;
  if (stored.hash !== anchor.hash) return `event ${anchor.seq} differs from what signed checkpoint #${anchor.checkpoint} anchored: the chain was rewritten`;
  return undefined;
}

/** Verifies a whole chain held in memory; see ChainVerifier. */
export function verifyChain(events: Iterable<AuditEvent>, head: ChainHead | null, anchor?: AnchoredHead): ChainVerification {
  const verifier = new ChainVerifier(anchor);
  for (const event of events) verifier.add(event);
  return verifier.finish(head);
}
