import type { Decision } from '../contracts/decision.js';

/**
 * Thrown by checkpoint() when Breakwater says HALT: the run must stop. Carries the decision's
 * reason, the metric that tripped with its threshold and observed value, and how long to wait
 * before trying again (retryAfterMs). onHalt has already been awaited when this is thrown.
 */
export class BreakwaterHaltError extends Error {
  override readonly name: string = 'BreakwaterHaltError';
  readonly tenantId: string;
  readonly runId: string | undefined;
  readonly scope: Decision['scope'];
  readonly reason: string;
  readonly metric: string;
  readonly threshold: number;
  readonly observed: number;
  readonly retryAfterMs: number;
  readonly decision: Decision;

  constructor(decision: Decision, runId: string | undefined, message?: string) {
    super(message ?? haltMessage(decision, runId));
    this.decision = decision;
    this.tenantId = decision.tenantId;
    this.runId = runId ?? decision.runId;
    this.scope = decision.scope;
    this.reason = decision.reason;
    this.metric = decision.metric;
    this.threshold = decision.threshold;
    this.observed = decision.observed;
    this.retryAfterMs = decision.retryAfterMs;
  }
}

/**
 * Thrown instead of a decision when Breakwater has been unreachable for longer than the grace period
 * and the instance fails closed. A BreakwaterHaltError, so one catch handles both.
 */
export class BreakwaterUnavailableError extends BreakwaterHaltError {
  override readonly name: string = 'BreakwaterUnavailableError';
  /** ms the decision subscription has been down */
  readonly downForMs: number;

  constructor(decision: Decision, runId: string | undefined, downForMs: number) {
    super(decision, runId, `Breakwater unreachable for ${Math.round(downForMs / 1000)} s and failMode is 'closed': ${decision.reason}`);
    this.downForMs = downForMs;
  }
}

function haltMessage(decision: Decision, runId: string | undefined): string {
  const what = runId === undefined ? `tenant ${decision.tenantId}` : `run ${runId} of tenant ${decision.tenantId}`;
  const metric = decision.metric ? ` (${decision.metric} ${decision.observed} >= ${decision.threshold})` : '';
  return `Breakwater halted ${what}: ${decision.reason || 'HALT'}${metric}`;
}
