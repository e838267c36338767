import type { ModelPrice } from '../policy/policy-types.js';
import type { SelfMetrics } from './self-metrics.js';
import type { SpanWriter } from '../storage/span-writer.js';
import { callCostUsd } from '../windows/cost.js';
import type { AgentSpan } from '../contracts/agent-span.js';
import { normalizeRequest } from '../normalize/normalize.js';
import type { OtlpTraceRequest } from '../codecs/otlp-model.js';

/** Sees every accepted span before it is stored: the decision path (windows, rules, breakers). Must not change the spans. */
export interface SpanObserver {
  observe(spans: readonly AgentSpan[], receivedAt: number): void;
}

export interface PipelineOptions {
  requireTenant: boolean;
  prices: () => Readonly<Record<string, ModelPrice>>;
  /** an observer threw (a bug): the spans are stored all the same */
  onObserverError?: (err: unknown) => void;
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

  constructor(
    private readonly writer: SpanWriter,
    private readonly metrics: SelfMetrics,
    private readonly options: PipelineOptions,
  ) {}

  addObserver(observer: SpanObserver): void {
    this.#observers.push(observer);
  }

  ingest(request: OtlpTraceRequest, context: { keyTenant?: string; receivedAt: number }): Promise<IngestOutcome> {
    try {
      return this.#admit(request, context);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #admit(request: OtlpTraceRequest, context: { keyTenant?: string; receivedAt: number }): Promise<IngestOutcome> {
    const normalized = normalizeRequest(request, {
      requireTenant: this.options.requireTenant,
      ...(context.keyTenant !== undefined ? { keyTenant: context.keyTenant } : {}),
    });
    if (normalized.rejected > 0) this.metrics.spansRejected.inc({ reason: 'invalid' }, normalized.rejected);
    const { spans, rejected, errorMessage } = normalized;
    if (!this.writer.hasRoomFor(spans.length)) {
      this.metrics.spansRejected.inc({ reason: 'queue_full' }, spans.length);
      return Promise.resolve({ kind: 'retry', status: 503, retryAfterSeconds: 1, message: 'write queue full, retry later' });
    }
    const prices = this.options.prices();
    const costs = new Float64Array(spans.length);
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i]!;
      costs[i] = callCostUsd(prices, span.responseModel || span.requestModel, span.inputTokens, span.outputTokens);
    }
    // Decisions first: the observers run before the spans are encoded for storage (about 2 µs a
    // span), so a breaker trips that much sooner. They only read the spans; one that fails is
    // reported and the others, and the write, go on: storing what arrived does not depend on them.
    for (const observer of this.#observers) {
      try {
        observer.observe(spans, context.receivedAt);
      } catch (err) {
        this.options.onObserverError?.(err);
      }
    }
    const committed = this.writer.write(spans, costs);
    return this.#settle(committed, spans.length, rejected, errorMessage);
  }

  /**
   * Waits for the commit holding only counts: an async frame keeps every local alive until it
   * resumes, and the spans (encoded already) would otherwise outlive many young-generation GCs
   * while the insert runs, to be promoted and collected the expensive way.
   */
  async #settle(committed: Promise<void>, accepted: number, rejected: number, errorMessage: string): Promise<IngestOutcome> {
    try {
      await committed;
    } catch (err) {
      this.metrics.spansRejected.inc({ reason: 'storage_unavailable' }, accepted);
      return { kind: 'retry', status: 503, retryAfterSeconds: 2, message: `storage unavailable: ${(err as Error).name}` };
    }
    this.metrics.spansAccepted.inc(accepted);
    return { kind: 'stored', accepted, rejected, errorMessage };
  }
}
