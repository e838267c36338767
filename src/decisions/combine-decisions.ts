import { actionSeverity, type DecisionDraft } from '../contracts/decision.js';

/**
 * The decision that governs when several apply at once (a run's own and its tenant's, or one
 * scope's several breakers): the most severe action; among equally severe ones the one that lasts
 * longest (`retryAt`), so an agent never resumes while something still halts it; on a full tie the
 * earliest in the list, so callers list the most specific decision first.
 */
export function mostSevere<T extends DecisionDraft>(
  decisions: readonly T[],
  retryAt: (decision: T) => number = (d) => d.retryAfterMs,
): T | undefined {
  let winner: T | undefined;
  for (const decision of decisions) {
    if (winner === undefined) {
      winner = decision;
      continue;
    }
    const bySeverity = actionSeverity(decision.action) - actionSeverity(winner.action);
    if (bySeverity > 0 || (bySeverity === 0 && retryAt(decision) > retryAt(winner))) winner = decision;
  }
  return winner;
}
