import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR } from './attributes.js';
import { scopeOf } from './run-scope.js';

export interface BreakwaterSpanProcessorOptions {
  /** the Breakwater instance whose run scopes this processor stamps */
  owner: object;
  /** where finished spans go (the StepExportProcessor toward Breakwater); none: stamp only */
  next?: SpanProcessor;
  /**
   * Which finished spans go to `next`: 'all' but those inside another instance's runs (a provider
   * of this instance's own, whose resource names the tenant), or 'runs' (only spans started inside
   * this instance's runs: a provider shared with the application or with other tenants).
   */
  forward: 'all' | 'runs';
}

/**
 * Stamps tenant.id, agent.run.id and agent.depth from the run scope in the parent context onto
 * every span started inside a run, whichever instrumentation made it, and forwards finished spans
 * to the exporting processor.
 */
export class BreakwaterSpanProcessor implements SpanProcessor {
  /** spans started inside this instance's runs ('runs' mode) or another's ('all' mode) */
  readonly #marked = new WeakSet<object>();

  constructor(private readonly options: BreakwaterSpanProcessorOptions) {}

  onStart(span: Span, parentContext: Context): void {
    const scope = scopeOf(parentContext);
    if (scope === undefined || scope.owner !== this.options.owner) {
      if (scope !== undefined && this.options.forward === 'all') this.#marked.add(span);
      this.options.next?.onStart(span, parentContext);
      return;
    }
    span.setAttributes({ [ATTR.tenantId]: scope.tenantId, [ATTR.runId]: scope.runId, [ATTR.depth]: scope.depth });
    if (this.options.forward === 'runs') this.#marked.add(span);
    this.options.next?.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    const next = this.options.next;
    if (next === undefined) return;
    const marked = this.#marked.has(span);
    if (this.options.forward === 'runs' ? marked : !marked) next.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.options.next?.forceFlush() ?? Promise.resolve();
  }

  shutdown(): Promise<void> {
    return this.options.next?.shutdown() ?? Promise.resolve();
  }
}
