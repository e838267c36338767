import type { ModelPrice } from '../policy/policy-types.js';
import type { SelfMetrics } from './self-metrics.js';
import type { RefusalLog } from './refusal-log.js';
import { refusalReason, type SpanWriter } from '../storage/span-writer.js';
import { WriteQueueShares } from '../storage/write-queue-shares.js';
import { RecentDeliveries } from './recent-deliveries.js';
import { callCostUsd } from '../windows/cost.js';
import type { AgentSpan } from '../contracts/agent-span.js';
import { normalizeRequest } from '../normalize/normalize.js';
import { DEFAULT_TOOL_SPAN_TRACES, ToolSpanTraces } from '../normalize/tool-calls.js';
import type { OtlpTraceRequest } from '../codecs/otlp-model.js';
import type { AttributeBudget } from '../normalize/attribute-budget.js';
import type { IngestRecord } from '../storage/ingest-wal.js';
import type { OtlpEncoding } from '../codecs/otlp-responses.js';
import { WalCommitter } from './wal-committer.js';

/** Sees every accepted span before it is stored: the decision path (windows, rules, breakers). Must not change the spans. */
export interface SpanObserver {
  observe(spans: readonly AgentSpan[], receivedAt: number): void;
}

/** Decides, before anything is acknowledged, which spans the decision path has room for. */
export interface SpanAdmission {
  admit(spans: readonly AgentSpan[]): SpanAdmissionOutcome;
}

export interface SpanAdmissionOutcome {
  /** the spans admitted (the input itself when none is refused) */
  spans: readonly AgentSpan[];
  /** spans refused, by reason (the metric label) */
  refused: ReadonlyMap<string, number>;
  /** for partial_success; '' when none is refused */
  errorMessage: string;
}

export interface PipelineOptions {
  requireTenant: boolean;
  prices: () => Readonly<Record<string, ModelPrice>>;
  /** the policy's run keys (normalize.ts); default none */
  runKeys?: () => readonly string[];
  /** spans must start within this many days (the spans table's TTL) */
  retentionDays: number;
  /** most of the write queue one tenant may hold, as a fraction of it */
  tenantQueueShare: number;
  /** refuses spans the decision path has no room for (answered in partial_success) */
  admission?: SpanAdmission;
  /** attributes one request may have stored (a resource's once per span); spans past it are rejected */
  attributeBudget?: AttributeBudget;
  /** says in the log which tenant was refused for its share of the write queue */
  refusals?: Pick<RefusalLog, 'refused'>;
  /** an observer threw (a bug): the spans are stored all the same */
  onObserverError?: (err: unknown) => void;
  /** acknowledge requests once they are in this write-ahead file, committing to ClickHouse behind the answer */
  wal?: WalCommitter;
}

/** What ingest got over the wire, for the write-ahead file: the decompressed body and its encoding. */
export interface RawRequest {
  encoding: OtlpEncoding;
  body: Buffer;
}

export interface IngestContext {
  keyTenant?: string;
  receivedAt: number;
  raw?: RawRequest;
}

export type IngestOutcome =
  | { kind: 'stored'; accepted: number; rejected: number; errorMessage: string }
  /** nothing was admitted; the client should retry after the delay */
  | { kind: 'retry'; status: 429 | 503; retryAfterSeconds: number; message: string };

/**
 * Decoded request to stored spans: normalize and validate, let the observers (the decision path)
 * see the spans at once, then hand the rows to the writer and wait for the commit.
 */
export class IngestPipeline {
  readonly #observers: SpanObserver[] = [];
  readonly #shares: WriteQueueShares;
  /** the same shares of the queue's attribute bytes */
  readonly #byteShares: WriteQueueShares;
  readonly #deliveries = new RecentDeliveries();
  /** traces that had a tool span, so their model spans' requested tool calls are not counted again */
  readonly #toolSpanTraces = new ToolSpanTraces(DEFAULT_TOOL_SPAN_TRACES);

  constructor(
    private readonly writer: SpanWriter,
    private readonly metrics: SelfMetrics,
    private readonly options: PipelineOptions,
  ) {
    this.#shares = new WriteQueueShares(Math.max(1, Math.floor(writer.capacity * options.tenantQueueShare)));
    this.#byteShares = new WriteQueueShares(Math.max(1, Math.floor(writer.byteCapacity * options.tenantQueueShare)));
  }

  addObserver(observer: SpanObserver): void {
    this.#observers.push(observer);
  }

  ingest(request: OtlpTraceRequest, context: IngestContext): Promise<IngestOutcome> {
    try {
      return this.#admit(request, context);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #normalize(request: OtlpTraceRequest, keyTenant: string | undefined) {
    return normalizeRequest(request, {
      requireTenant: this.options.requireTenant,
      ...(keyTenant !== undefined ? { keyTenant } : {}),
      acceptedStart: { nowMs: Date.now(), retentionDays: this.options.retentionDays },
      ...(this.options.attributeBudget !== undefined ? { attributeBudget: this.options.attributeBudget } : {}),
      ...(this.options.runKeys !== undefined ? { runKeys: this.options.runKeys() } : {}),
      toolSpanTraces: this.#toolSpanTraces,
    });
  }

  #admit(request: OtlpTraceRequest, context: IngestContext): Promise<IngestOutcome> {
    const normalized = this.#normalize(request, context.keyTenant);
    const invalid = normalized.rejected - normalized.overBudget;
    if (invalid > 0) this.metrics.spansRejected.inc({ reason: 'invalid' }, invalid);
    if (normalized.overBudget > 0) this.metrics.spansRejected.inc({ reason: 'attribute_budget' }, normalized.overBudget);
    const { spans, rejected, errorMessage } = this.#admitted(normalized);
    // A retried delivery is counted once: a committed one is answered as stored again, and one
    // whose first attempt failed is stored without the decision path seeing it twice.
    const digest = spans.length > 0 ? RecentDeliveries.digest(spans) : '';
    const earlier = spans.length > 0 ? this.#deliveries.earlier(digest) : 'new';
    if (earlier === 'committed') {
      this.metrics.spansRedelivered.inc({ skipped: 'storage' }, spans.length);
      return Promise.resolve({ kind: 'stored', accepted: spans.length, rejected, errorMessage });
    }
    if (!this.writer.hasRoomFor(spans.length, normalized.attributeBytes)) {
      this.metrics.spansRejected.inc({ reason: 'queue_full' }, spans.length);
      return Promise.resolve({ kind: 'retry', status: 503, retryAfterSeconds: 1, message: 'write queue full, retry later' });
    }
    const wal = context.raw === undefined || this.options.wal?.answersEarly(spans.length) !== true ? undefined : this.options.wal;
    if (wal !== undefined && !wal.hasRoomFor(context.raw!.body.length)) {
      this.metrics.spansRejected.inc({ reason: 'queue_full' }, spans.length);
      return Promise.resolve({ kind: 'retry', status: 503, retryAfterSeconds: 1, message: 'write-ahead file full, retry later' });
    }
    const share = this.#shares.tryTake(spans);
    if (!share.ok) {
      this.#refusedShare(share.tenantId, 'tenant_queue_share', spans.length, share.held);
      const message = `tenant ${JSON.stringify(share.tenantId)} has ${share.held} spans waiting for storage, its share of the write queue; retry later`;
      return Promise.resolve({ kind: 'retry', status: 429, retryAfterSeconds: 1, message });
    }
    const byteShare = this.#byteShares.tryTakeAmounts(normalized.attributeBytesByTenant);
    if (!byteShare.ok) {
      this.#shares.give(share.taken);
      this.#refusedShare(byteShare.tenantId, 'tenant_queue_share_bytes', spans.length, byteShare.held);
      const message = `tenant ${JSON.stringify(byteShare.tenantId)} has ${byteShare.held} bytes of attributes waiting for storage, its share of the write queue; retry later`;
      return Promise.resolve({ kind: 'retry', status: 429, retryAfterSeconds: 1, message });
    }
    const prices = this.options.prices();
    const costs = new Float64Array(spans.length);
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i]!;
      costs[i] = callCostUsd(prices, span.responseModel, span.requestModel, span.inputTokens, span.outputTokens);
    }
    if (earlier === 'observed') this.metrics.spansRedelivered.inc({ skipped: 'observers' }, spans.length);
    else this.#observe(spans, context.receivedAt, digest);
    if (wal !== undefined) {
      const giveBack = () => {
        this.#shares.give(share.taken);
        this.#byteShares.give(byteShare.taken);
      };
      // Partly refused requests keep the accepted span ids: a replay must not store the refused ones.
      const record: IngestRecord = { ...context.raw!, ...(context.keyTenant !== undefined ? { keyTenant: context.keyTenant } : {}), ...(rejected > 0 ? { spanIds: spans.map((s) => s.spanId) } : {}) };
      let durable: Promise<void>;
      try {
        durable = wal.accept(record, spans, costs, normalized.attributeBytes, giveBack);
      } catch (err) {
        giveBack();
        return Promise.resolve(this.#unstored(err as Error, spans.length));
      }
      return this.#settleDurable(durable, digest, spans.length, rejected, errorMessage);
    }
    const committed = this.writer.write(spans, costs, normalized.attributeBytes);
    return this.#settle(committed, [share.taken, byteShare.taken], digest, spans.length, rejected, errorMessage);
  }

  /** As #settle, once the request is durable in the write-ahead file (its commit to ClickHouse follows on its own). */
  async #settleDurable(durable: Promise<void>, digest: string, accepted: number, rejected: number, errorMessage: string): Promise<IngestOutcome> {
    try {
      await durable;
    } catch (err) {
      return this.#unstored(err as Error, accepted);
    }
    if (accepted > 0) this.#deliveries.committed(digest);
    this.metrics.spansAccepted.inc(accepted);
    return { kind: 'stored', accepted, rejected, errorMessage };
  }

  #unstored(err: Error, spans: number): IngestOutcome {
    this.metrics.spansRejected.inc({ reason: 'storage_unavailable' }, spans);
    const refusal = refusalReason(err);
    const message = refusal === undefined ? `storage unavailable: ${err.name}` : `storage refused these spans: ${refusal}`;
    return { kind: 'retry', status: 503, retryAfterSeconds: 2, message };
  }

  /** The spans a write-ahead record holds, normalized as the receiver did (less the spans it had refused). */
  replayable(record: IngestRecord, request: OtlpTraceRequest): AgentSpan[] {
    const spans = this.#normalize(request, record.keyTenant).spans;
    if (record.spanIds === undefined) return spans;
    const accepted = new Set(record.spanIds);
    return spans.filter((s) => accepted.has(s.spanId));
  }

  /**
   * Spans a previous process acknowledged from the write-ahead file and did not store: the
   * decision path sees them (the run budgets resumed from storage do not hold them), then they
   * are written. Resolves once they are committed.
   */
  async replay(spans: readonly AgentSpan[]): Promise<void> {
    if (spans.length === 0) return;
    const prices = this.options.prices();
    const costs = spans.map((span) => callCostUsd(prices, span.responseModel, span.requestModel, span.inputTokens, span.outputTokens));
    this.#observe(spans, performance.now(), RecentDeliveries.digest(spans));
    await this.writer.write(spans, costs);
  }

  /** Counts a request refused for a tenant's share of the write queue (spans, or attribute bytes), and logs it. */
  #refusedShare(tenantId: string, reason: 'tenant_queue_share' | 'tenant_queue_share_bytes', spans: number, held: number): void {
    this.metrics.spansRejected.inc({ reason: 'tenant_queue_share' }, spans);
    this.metrics.ingestRequestsRefused.inc({ reason: 'tenant_queue_share' });
    this.options.refusals?.refused(tenantId, reason, { requests: 1, spans }, { held });
  }

  /** The normalized spans less those the admission refuses, which join the rejected ones. */
  #admitted(normalized: { spans: AgentSpan[]; rejected: number; errorMessage: string }): { spans: readonly AgentSpan[]; rejected: number; errorMessage: string } {
    const outcome = this.options.admission?.admit(normalized.spans);
    if (outcome === undefined || outcome.refused.size === 0) return normalized;
    let refused = 0;
    for (const [reason, n] of outcome.refused) {
      this.metrics.spansRejected.inc({ reason }, n);
      refused += n;
    }
    const errorMessage = normalized.errorMessage === '' ? outcome.errorMessage : `${normalized.errorMessage}; ${outcome.errorMessage}`;
    return { spans: outcome.spans, rejected: normalized.rejected + refused, errorMessage };
  }

  /**
   * Decisions first: the observers run before the spans are encoded for storage (about 2 µs a
   * span), so a breaker trips that much sooner. They only read the spans; one that fails is
   * reported and the others, and the write, go on: storing what arrived does not depend on them.
   */
  #observe(spans: readonly AgentSpan[], receivedAt: number, digest: string): void {
    if (spans.length > 0) this.#deliveries.observed(digest);
    for (const observer of this.#observers) {
      try {
        observer.observe(spans, receivedAt);
      } catch (err) {
        this.options.onObserverError?.(err);
      }
    }
  }

  /**
   * Waits for the commit holding only counts: an async frame keeps every local alive until it
   * resumes, and the spans (encoded already) would otherwise outlive many young-generation GCs
   * while the insert runs, to be promoted and collected the expensive way.
   */
  async #settle(committed: Promise<void>, [shares, byteShares]: [Map<string, number>, Map<string, number>], digest: string, accepted: number, rejected: number, errorMessage: string): Promise<IngestOutcome> {
    try {
      await committed;
    } catch (err) {
      return this.#unstored(err as Error, accepted);
    } finally {
      this.#shares.give(shares);
      this.#byteShares.give(byteShares);
    }
    if (accepted > 0) this.#deliveries.committed(digest);
    this.metrics.spansAccepted.inc(accepted);
    return { kind: 'stored', accepted, rejected, errorMessage };
  }
}
