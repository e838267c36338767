// Sends a run's spans the moment they end, several exports at a time, so that Breakwater's decision
// about a step is back before the agent's next checkpoint(); what piles up meanwhile leaves batched.

import { context, TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, suppressTracing, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR } from './attributes.js';
import type { SdkLogger } from './logger.js';

export interface StepExportOptions {
  exporter: SpanExporter;
  logger: SdkLogger;
  /** exports waiting for their answer at the same time; default 4 */
  maxConcurrentExports?: number;
  /** the longest a finished span outside any run waits to leave; default 200 ms */
  scheduledDelayMillis?: number;
  /** finished spans held while every export slot is busy; beyond it the oldest are dropped; default 8192 */
  maxQueueSize?: number;
  /** spans in one export request at most; default 512 */
  maxExportBatchSize?: number;
  /** when an unanswered export counts as failed and frees its slot; default 11 s, past the OTLP exporter's 10 s */
  exportTimeoutMillis?: number;
  /** called with the spans of every export the endpoint accepted (the local judge's confirmation clock) */
  onAccepted?: (spans: readonly ReadableSpan[]) => void;
}

/** What became of the spans handed to the processor. */
export interface ExportStats {
  /** spans the endpoint accepted */
  exported: number;
  /** spans in exports that failed or timed out */
  failed: number;
  /** spans dropped unsent because the queue was full */
  dropped: number;
  /** spans waiting for an export slot or for their delay */
  queued: number;
  /** exports waiting for their answer */
  inFlight: number;
  /** export requests made */
  requests: number;
}

export class StepExportProcessor implements SpanProcessor {
  readonly #exporter: SpanExporter;
  readonly #logger: SdkLogger;
  readonly #maxConcurrent: number;
  readonly #delayMs: number;
  readonly #maxQueue: number;
  readonly #maxBatch: number;
  readonly #timeoutMs: number;
  readonly #onAccepted: ((spans: readonly ReadableSpan[]) => void) | undefined;
  #queue: ReadableSpan[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  /** the queued spans leave as soon as a slot is free (a run's span is among them, or the delay ran out) */
  #due = false;
  #timer: NodeJS.Timeout | undefined;
  #flushes = 0;
  /** spans ever queued, and spans ever taken off the queue (sent or dropped): forceFlush's watermark */
  #enqueued = 0;
  #taken = 0;
  readonly #stats = { exported: 0, failed: 0, dropped: 0, requests: 0 };
  /** losses not yet reported in a log line */
  #unreportedFailed = 0;
  #unreportedDropped = 0;
  #shutdown: Promise<void> | undefined;

  constructor(options: StepExportOptions) {
    this.#exporter = options.exporter;
    this.#logger = options.logger;
    this.#maxConcurrent = positive(options.maxConcurrentExports ?? 4, 'maxConcurrentExports');
    this.#delayMs = Math.max(0, options.scheduledDelayMillis ?? 200);
    this.#maxQueue = positive(options.maxQueueSize ?? 8_192, 'maxQueueSize');
    this.#maxBatch = Math.min(this.#maxQueue, positive(options.maxExportBatchSize ?? 512, 'maxExportBatchSize'));
    this.#timeoutMs = positive(options.exportTimeoutMillis ?? 11_000, 'exportTimeoutMillis');
    this.#onAccepted = options.onAccepted;
  }

  stats(): ExportStats {
    return { ...this.#stats, queued: this.#queue.length, inFlight: this.#inFlight.size };
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#shutdown !== undefined) return;
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    // Oldest first: when the queue is full Breakwater is far behind, and the newest spans are the
    // ones that describe the steps still running, which is what the next decision is about.
    if (this.#queue.length >= this.#maxQueue) this.#dropOldest();
    this.#queue.push(span);
    this.#enqueued++;
    if (span.attributes[ATTR.runId] !== undefined || this.#queue.length >= this.#maxBatch) this.#due = true;
    else this.#armTimer();
    this.#pump();
  }

  /** Resolves once every span queued before the call has been exported (or counted as lost). */
  forceFlush(): Promise<void> {
    return this.#shutdown ?? this.#flush();
  }

  /** Flushes, then shuts the exporter down; never rejects (losses are counted and logged). */
  shutdown(): Promise<void> {
    return (this.#shutdown ??= this.#close());
  }

  async #flush(): Promise<void> {
    const target = this.#enqueued;
    this.#flushes++;
    try {
      for (;;) {
        this.#pump();
        if (this.#taken >= target || this.#inFlight.size === 0) break;
        await Promise.race(this.#inFlight);
      }
      await Promise.all(this.#inFlight);
    } finally {
      this.#flushes--;
    }
  }

  async #close(): Promise<void> {
    await this.#flush();
    clearTimeout(this.#timer);
    const { exported, failed, dropped } = this.#stats;
    if (failed + dropped > 0) this.#logger.warn('spans lost toward Breakwater since start', { exported, failed, dropped });
    try {
      await this.#exporter.shutdown();
    } catch (err) {
      this.#logger.warn('the span exporter failed to shut down', { error: errorText(err) });
    }
  }

  #armTimer(): void {
    if (this.#timer !== undefined || this.#due) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#due = true;
      this.#pump();
    }, this.#delayMs);
    this.#timer.unref();
  }

  #pump(): void {
    while (this.#inFlight.size < this.#maxConcurrent && this.#queue.length > 0 && (this.#due || this.#flushes > 0)) {
      const batch = this.#queue.length <= this.#maxBatch ? this.#queue : this.#queue.slice(0, this.#maxBatch);
      this.#queue = batch === this.#queue ? [] : this.#queue.slice(batch.length);
      this.#taken += batch.length;
      this.#export(batch);
    }
    if (this.#queue.length === 0) {
      this.#due = false;
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #export(batch: ReadableSpan[]): void {
    this.#stats.requests++;
    const done = new Promise<void>((resolve) => {
      let settled = false;
      const settle = (result: ExportResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#record(batch.length, result);
        if (result.code === ExportResultCode.SUCCESS) this.#onAccepted?.(batch);
        resolve();
      };
      // The exporter's own timeout normally answers first; this one frees the slot if it never does.
      const timer = setTimeout(() => settle({ code: ExportResultCode.FAILED, error: new Error(`no answer within ${this.#timeoutMs} ms`) }), this.#timeoutMs);
      // Exports must not trace themselves (an instrumented HTTP client would make spans about them).
      context.with(suppressTracing(context.active()), () => {
        const send = () => {
          try {
            this.#exporter.export(batch, settle);
          } catch (err) {
            settle({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
          }
        };
        const pending = batch.flatMap((s) => (s.resource.asyncAttributesPending && s.resource.waitForAsyncAttributes ? [s.resource.waitForAsyncAttributes()] : []));
        if (pending.length === 0) send();
        else Promise.all(pending).then(send, (err: unknown) => settle({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) }));
      });
    });
    this.#inFlight.add(done);
    void done.then(() => {
      this.#inFlight.delete(done);
      this.#pump();
    });
  }

  #record(spans: number, result: ExportResult): void {
    if (result.code === ExportResultCode.SUCCESS) {
      this.#stats.exported += spans;
      this.#reportLosses();
      return;
    }
    this.#stats.failed += spans;
    if (this.#unreportedFailed === 0) {
      this.#logger.warn('spans could not be sent to Breakwater; decisions may lag until exports succeed again', { spans, error: errorText(result.error) });
    }
    this.#unreportedFailed += spans;
  }

  #dropOldest(): void {
    this.#queue.shift();
    this.#taken++;
    this.#stats.dropped++;
    if (this.#unreportedDropped === 0) this.#logger.warn('span export queue full: dropping the oldest spans', { maxQueueSize: this.#maxQueue });
    this.#unreportedDropped++;
  }

  /** Closes an episode of losses (warned about when it began) with how many spans it lost. */
  #reportLosses(): void {
    if (this.#unreportedFailed + this.#unreportedDropped === 0) return;
    this.#logger.info('spans reach Breakwater again', {
      failed: this.#unreportedFailed,
      dropped: this.#unreportedDropped,
    });
    this.#unreportedFailed = 0;
    this.#unreportedDropped = 0;
  }
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`Breakwater: ${name} must be a positive integer`);
  return value;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
