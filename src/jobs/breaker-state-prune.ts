import type { AuditLog } from '../audit/audit-log.js';
import type { Job } from './scheduler.js';

/** Hourly: breakers closed for a day leave breaker_state (their history stays in the audit log). */
export function breakerStatePruneJob(audit: AuditLog, schedule = '17 * * * *'): Job {
  return { name: 'breaker-state-prune', schedule, run: () => audit.pruneClosedBreakers() };
}
