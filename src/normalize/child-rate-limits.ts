// Rate-limit headers are recorded by HTTP client instrumentations (httpx, undici, fetch) on the
// HTTP span under the model call, not on the model call the windows and the degradation path read:
// a model-call span takes the values it lacks from a child of it in the same request.

import type { AgentSpan } from '../contracts/agent-span.js';

const FIELDS = ['rateLimitRemainingRequests', 'rateLimitRemainingTokens', 'rateLimitLimitRequests', 'rateLimitLimitTokens', 'retryAfterMs'] as const;

function carriesRateLimit(span: AgentSpan): boolean {
  for (const field of FIELDS) if (span[field] >= 0) return true;
  return false;
}

/** Copies each child's rate-limit columns onto its parent span where the parent has none of its own. */
export function liftChildRateLimits(spans: readonly AgentSpan[]): void {
  let byId: Map<string, AgentSpan> | undefined;
  for (const child of spans) {
    if (child.parentSpanId === '' || !carriesRateLimit(child)) continue;
    // Indexed only for a request that has such a child: most have none.
    byId ??= new Map(spans.map((span) => [span.traceId + span.spanId, span]));
    const parent = byId.get(child.traceId + child.parentSpanId);
    if (parent === undefined || parent.tenantId !== child.tenantId) continue;
    for (const field of FIELDS) if (parent[field] < 0 && child[field] >= 0) parent[field] = child[field];
  }
}
