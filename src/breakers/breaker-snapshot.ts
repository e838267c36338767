import { BREAKER_STATES, SCOPES, type BreakerState, type Scope } from '../contracts/decision.js';
import type { Crossing } from './threshold-rules.js';

/** What one breaker guards: a tenant as a whole, or one run of a tenant. */
export interface BreakerKey {
  tenantId: string;
  scope: Scope;
  /** set for RUN scope */
  runId?: string;
}

/**
 * Everything a breaker needs to resume after a restart. Times are wall-clock ms since the epoch, so
 * an OPEN breaker restored in a new process keeps the cooldown it had.
 */
export interface BreakerSnapshot {
  state: BreakerState;
  /** when the breaker last opened; null when closed since a reset or never opened */
  openedAt: number | null;
  /** cooldown of the current (or latest) opening; grows with consecutive re-opens */
  cooldownMs: number;
  /** consecutive HALF_OPEN → OPEN re-opens since the breaker last closed */
  reopenCount: number;
  /** probe steps still to pass before a HALF_OPEN breaker closes */
  probesLeft: number;
  /** when a FORCED_OPEN breaker closes by itself; null = until an operator resets it */
  forcedUntil: number | null;
  /** who forced a FORCED_OPEN breaker open (a token's name): a tenant may lift only what it forced */
  forcedBy: string | null;
  /** the crossing that opened the breaker */
  lastCrossing: Crossing | null;
  /** why the breaker is in its state (an operator's words for FORCED_OPEN and DISABLED) */
  reason: string;
}

export function closedSnapshot(): BreakerSnapshot {
  return {
    state: 'CLOSED',
    openedAt: null,
    cooldownMs: 0,
    reopenCount: 0,
    probesLeft: 0,
    forcedUntil: null,
    forcedBy: null,
    lastCrossing: null,
    reason: '',
  };
}

/** A stable string for maps keyed by breaker. */
export function breakerKeyId(key: BreakerKey): string {
  return `${key.tenantId}\u0000${key.scope}\u0000${key.runId ?? ''}`;
}

/**
 * Reads a snapshot back from storage (audit event details). Returns null for anything malformed:
 * a restart must not crash on one bad record, and a breaker without a snapshot simply starts CLOSED.
 */
export function parseBreakerSnapshot(value: unknown): BreakerSnapshot | null {
  if (!isRecord(value)) return null;
  const { state, openedAt, cooldownMs, reopenCount, probesLeft, forcedUntil, forcedBy, lastCrossing, reason } = value;
  if (typeof state !== 'string' || !(BREAKER_STATES as readonly string[]).includes(state)) return null;
  if (!isFiniteOrNull(openedAt) || !isFiniteOrNull(forcedUntil)) return null;
  if (!isNonNegative(cooldownMs) || !isNonNegative(reopenCount) || !isNonNegative(probesLeft)) return null;
  const crossing = lastCrossing === null || lastCrossing === undefined ? null : parseCrossing(lastCrossing);
  if (lastCrossing !== null && lastCrossing !== undefined && crossing === null) return null;
  return {
    state: state as BreakerState,
    openedAt,
    cooldownMs,
    reopenCount,
    probesLeft,
    forcedUntil,
    // snapshots written before forcedBy existed name no one: only a platform admin lifts them
    forcedBy: typeof forcedBy === 'string' ? forcedBy : null,
    lastCrossing: crossing,
    reason: typeof reason === 'string' ? reason : '',
  };
}

export function parseBreakerKey(tenantId: string, scope: string, runId: string): BreakerKey | null {
  if (!(SCOPES as readonly string[]).includes(scope)) return null;
  return { tenantId, scope: scope as Scope, ...(runId === '' ? {} : { runId }) };
}

function parseCrossing(value: unknown): Crossing | null {
  if (!isRecord(value)) return null;
  const { metric, threshold, observed } = value;
  if (typeof metric !== 'string' || typeof threshold !== 'number' || typeof observed !== 'number') return null;
  return { metric, threshold, observed };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFiniteOrNull(value: unknown): value is number | null {
  return value === null || (typeof value === 'number' && Number.isFinite(value));
}

function isNonNegative(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}
