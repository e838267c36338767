// The decision object: one shape everywhere (GraphQL, SDK, audit log), as DESIGN.md fixes it.

export const SCOPES = ['TENANT', 'RUN', 'PROVIDER', 'MODEL'] as const;
export type Scope = (typeof SCOPES)[number];

/** Ordered from least to most severe; a combined decision takes the most severe. */
export const ACTIONS = ['ALLOW', 'WARN', 'THROTTLE', 'DEGRADE', 'HALT'] as const;
export type Action = (typeof ACTIONS)[number];

export const BREAKER_STATES = ['CLOSED', 'OPEN', 'HALF_OPEN', 'FORCED_OPEN', 'DISABLED'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export interface Decision {
  tenantId: string;
  runId?: string;
  scope: Scope;
  action: Action;
  state: BreakerState;
  reason: string;
  metric: string;
  threshold: number;
  observed: number;
  retryAfterMs: number;
  fallbackModel?: string;
  tier?: number;
  /** true when the agent runs on a lower degradation tier, so it can flag its outputs */
  degraded?: boolean;
  /** monotonically increasing per Breakwater process and persisted across restarts */
  sequence: number;
  /** ISO-8601 */
  issuedAt: string;
  /** 'local': made by the SDK from its run's own spans (src/sdk/local-judge.ts); absent: Breakwater's */
  source?: 'local';
}

export function actionSeverity(action: Action): number {
  return ACTIONS.indexOf(action);
}

/**
 * A decision before the decision bus stamps it: the bus owns `sequence` and `issuedAt` so that
 * sequence numbers stay monotonic across every breaker that publishes.
 */
export type DecisionDraft = Omit<Decision, 'sequence' | 'issuedAt'>;

/** What applies when no breaker has said anything: carry on. */
export function allowDecision(tenantId: string, runId?: string): DecisionDraft {
  return {
    tenantId,
    ...(runId === undefined ? {} : { runId }),
    scope: runId === undefined ? 'TENANT' : 'RUN',
    action: 'ALLOW',
    state: 'CLOSED',
    reason: '',
    metric: '',
    threshold: 0,
    observed: 0,
    retryAfterMs: 0,
  };
}
