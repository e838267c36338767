// Sits in front of the exporting processor: every finished span of this instance's runs is read
// as the server will read it and recorded in the local judge before it leaves, so a crossing is
// decided at the step that makes it, with no I/O.

import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Decision } from '../contracts/decision.js';
import { ATTR } from './attributes.js';
import type { LocalJudge } from './local-judge.js';
import { agentSpansOf } from './local-spans.js';
import type { SdkLogger } from './logger.js';

export interface LocalDecisionProcessorOptions {
  judge: LocalJudge;
  next: SpanProcessor;
  logger: SdkLogger;
}

export class LocalDecisionProcessor implements SpanProcessor {
  /** told of every local decision (the instance's onDecision listeners) */
  onDecision: (decision: Decision) => void = () => {};
  readonly judge: LocalJudge;
  #failureLogged = false;

  constructor(private readonly o: LocalDecisionProcessorOptions) {
    this.judge = o.judge;
  }

  onStart(span: Span, parentContext: Context): void {
    this.o.next.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    if (span.attributes[ATTR.runId] !== undefined) this.#judge(span);
    this.o.next.onEnd(span);
  }

  /** The server accepted these spans (called by the exporting processor). */
  accepted(spans: readonly ReadableSpan[]): void {
    if (!this.o.judge.pending) return;
    const now = Date.now();
    this.o.judge.accepted(
      spans.map((s) => ({ runId: String(s.attributes[ATTR.runId] ?? ''), spanId: s.spanContext().spanId })),
      now,
    );
  }

  forceFlush(): Promise<void> {
    return this.o.next.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.o.next.shutdown();
  }

  #judge(span: ReadableSpan): void {
    try {
      const now = Date.now();
      for (const agentSpan of agentSpansOf([span])) {
        const decision = this.o.judge.record(agentSpan, now);
        if (decision !== undefined) this.onDecision(decision);
      }
    } catch (err) {
      // The export path must go on whatever the judge makes of a span: the server still decides.
      if (!this.#failureLogged) this.o.logger.warn('local decisions: a span could not be judged', { error: err instanceof Error ? err.message : String(err) });
      this.#failureLogged = true;
    }
  }
}
