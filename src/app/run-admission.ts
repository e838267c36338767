import type { AgentSpan } from '../contracts/agent-span.js';
import type { RunRefusal, WindowStore } from '../windows/window-store.js';
import type { SpanAdmission, SpanAdmissionOutcome } from './pipeline.js';

/** Called once per request, tenant and reason with the new runs and their spans refused. */
export type RunRefusalListener = (tenantId: string, reason: RunRefusal, runs: number, spans: number) => void;

const MESSAGES: Record<RunRefusal, (tenantId: string) => string> = {
  tenant_runs: (tenantId) =>
    `tenant ${JSON.stringify(tenantId)} holds as many runs as it may (--max-runs-per-tenant) and none can give way (each was seen within the last minute or holds a decision): spans of its new runs are refused, those of its existing runs accepted`,
  runs: (tenantId) =>
    `Breakwater holds as many runs as it may (all tenants) and none can give way for tenant ${JSON.stringify(tenantId)}: spans of its new runs are refused, those of its existing runs accepted`,
};

/**
 * The window store's run bounds applied at ingest, before the spans are acknowledged: a span of a
 * new run that gets no window is refused (in partial_success) rather than stored unseen by the
 * breakers. A request's runs already held are marked used first, so its new runs cannot take
 * their room.
 */
export class RunAdmission implements SpanAdmission {
  constructor(
    private readonly windows: Pick<WindowStore, 'touchRun' | 'admitRun'>,
    private readonly onRefused?: RunRefusalListener,
  ) {}

  admit(spans: readonly AgentSpan[]): SpanAdmissionOutcome {
    let missing: number[] | undefined;
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i]!;
      if (!this.windows.touchRun(span.tenantId, span.runId)) (missing ??= []).push(i);
    }
    if (missing === undefined) return { spans, refused: new Map(), errorMessage: '' };

    // Once a tenant is refused nothing later in the request makes room for it: refuse its other new runs without looking again.
    const refusedTenants = new Map<string, { reason: RunRefusal; runs: Set<string>; spans: number }>();
    const refusedAt = new Set<number>();
    for (const i of missing) {
      const span = spans[i]!;
      let refusal = refusedTenants.get(span.tenantId);
      if (refusal === undefined) {
        const reason = this.windows.admitRun(span.tenantId, span.runId);
        if (reason === undefined) continue;
        refusedTenants.set(span.tenantId, (refusal = { reason, runs: new Set(), spans: 0 }));
      } else if (!refusal.runs.has(span.runId) && this.windows.touchRun(span.tenantId, span.runId)) {
        continue; // admitted for an earlier span of this request, before the tenant was refused
      }
      refusal.runs.add(span.runId);
      refusal.spans++;
      refusedAt.add(i);
    }
    if (refusedAt.size === 0) return { spans, refused: new Map(), errorMessage: '' };

    const refused = new Map<RunRefusal, number>();
    const messages: string[] = [];
    for (const [tenantId, r] of refusedTenants) {
      refused.set(r.reason, (refused.get(r.reason) ?? 0) + r.spans);
      messages.push(`${r.spans} spans of ${r.runs.size} new runs: ${MESSAGES[r.reason](tenantId)}`);
      this.onRefused?.(tenantId, r.reason, r.runs.size, r.spans);
    }
    return { spans: spans.filter((_, i) => !refusedAt.has(i)), refused, errorMessage: messages.join('; ') };
  }
}
