// The run scope: which tenant, run and sub-agent depth the code running now belongs to. It lives in
// the OpenTelemetry context, so it follows every async boundary the context manager follows
// (awaits, Promise.all, timers, event emitters bound to the context) and reaches spans made by any
// instrumentation: the span processor reads it from the parent context in onStart.

import { context, createContextKey, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

export interface RunScope {
  /** the Breakwater instance that opened the scope: only its processor stamps the spans */
  readonly owner: object;
  readonly tenantId: string;
  /** the ROOT run id: a sub-agent's usage counts toward the run that spawned it */
  readonly runId: string;
  /** 0 for the root agent, +1 per sub-agent */
  readonly depth: number;
  readonly agentName: string;
}

export const RUN_SCOPE_KEY = createContextKey('breakwater.run-scope');

export function scopeOf(ctx: Context): RunScope | undefined {
  return ctx.getValue(RUN_SCOPE_KEY) as RunScope | undefined;
}

export function activeScope(): RunScope | undefined {
  return scopeOf(context.active());
}

let contextManagerChecked = false;

/**
 * Run scopes need a context manager that follows async work. NodeSDK registers one when it starts;
 * without NodeSDK (a per-instance provider, or attaching before the application's SDK starts)
 * register the AsyncLocalStorage one unless some manager is registered already.
 */
export function ensureContextManager(): void {
  if (contextManagerChecked) return;
  contextManagerChecked = true;
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) manager.disable();
}

/** True when the registered context manager carries values across an await (not the no-op one). */
export async function contextPropagates(): Promise<boolean> {
  const probe = createContextKey('breakwater.probe');
  return context.with(context.active().setValue(probe, true), async () => {
    await Promise.resolve();
    return context.active().getValue(probe) === true;
  });
}
