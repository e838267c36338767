// Compaction of the run-time change log before it is replayed. Tenant admins can only add
// tightenings; a tightening edits only its tenant's own layer, which nothing reads during the replay
// but the same tenant's later tightenings, and a `revertTenantPolicy` drops the layer whatever came
// before. So each tenant's tightenings since its last revert fold into one record that lays the same
// layer over any file; platform changes, made by the operator, are kept as they are.

import { mergePatch } from './plain-data.js';
import type { RecordedChange } from './runtime-policy.js';
import type { Tightening } from './tighten-only.js';

/**
 * The changes with each tenant's tightenings folded: replaying the result over any file gives the
 * same platform document and the same tenant layers as replaying `changes`. A folded record keeps
 * the sequence number, actor and time of the last tightening it stands for.
 */
export function compactChanges(changes: readonly RecordedChange[]): RecordedChange[] {
  const out: RecordedChange[] = [];
  const layers = new Map<string, { layer: Tightening | undefined; last: RecordedChange }>();
  for (const recorded of changes) {
    const { change } = recorded;
    if (change.kind === 'tightenTenantPolicy') {
      const before = layers.get(change.tenantId)?.layer;
      layers.set(change.tenantId, { layer: change.patch === null ? undefined : mergePatch(before ?? {}, change.patch), last: recorded });
      continue;
    }
    if (change.kind === 'revertTenantPolicy') layers.delete(change.tenantId);
    out.push(recorded);
  }
  for (const [tenantId, { layer, last }] of layers) {
    if (layer !== undefined) out.push({ ...last, change: { kind: 'tightenTenantPolicy', tenantId, patch: layer } });
  }
  return out.sort((a, b) => a.seq - b.seq);
}
