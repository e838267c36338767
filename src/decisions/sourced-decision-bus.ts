// Two engines decide for the same (tenant, run): the tenant/run breakers (BreakerEngine) and the
// degradation path. DecisionBus keeps one decision per (tenant, run), so whichever published last
// would replace the other's: a breaker's ALLOW would cancel a DEGRADE, a degradation retraction
// would cancel a breaker's HALT. This bus keeps the latest decision of each source per (tenant,
// run) and publishes the most severe of them (see mostSevere; the degradation decision first, so
// on a tie its tier and model are the ones the agent sees). A plain ALLOW holds no slot, so healthy
// tenants and runs cost nothing here either.
//
// BreakerEngine keeps calling publish() (its source is 'breaker'); the degradation engine publishes
// through sink('degradation').

import type { AuditEvent } from '../audit/audit-event.js';
import { mostSevere } from './combine-decisions.js';
import { DecisionBus, type DecisionBusOptions } from './decision-bus.js';
import type { Decision, DecisionDraft } from '../contracts/decision.js';

export type DecisionSource = 'breaker' | 'degradation';

/** Most specific first: on a tie of severity and retry time, the earlier source's decision governs. */
const SOURCES: readonly DecisionSource[] = ['degradation', 'breaker'];

export interface DecisionSinkOf {
  publish(draft: DecisionDraft): Decision;
  publishBreakerEvent(event: AuditEvent): void;
}

export class SourcedDecisionBus extends DecisionBus {
  readonly #slots = new Map<string, Map<DecisionSource, DecisionDraft>>();

  constructor(options: DecisionBusOptions = {}) {
    super(options);
  }

  /** The tenant/run breakers' decisions (BreakerEngine calls this). */
  override publish(draft: DecisionDraft): Decision {
    return this.publishFrom('breaker', draft);
  }

  /** Records `source`'s decision for its (tenant, run) and publishes the most severe of the sources'. */
  publishFrom(source: DecisionSource, draft: DecisionDraft): Decision {
    const key = slotKey(draft.tenantId, draft.runId);
    let slots = this.#slots.get(key);
    if (isPlain(draft)) {
      slots?.delete(source);
      if (slots?.size === 0) this.#slots.delete(key);
    } else {
      if (slots === undefined) this.#slots.set(key, (slots = new Map()));
      slots.set(source, draft);
    }
    const held = SOURCES.flatMap((s) => {
      const d = slots?.get(s);
      return d === undefined ? [] : [d];
    });
    return super.publish(mostSevere(held) ?? draft);
  }

  /** What one source last said for (tenant, run); undefined when it holds a plain ALLOW. */
  latestFrom(source: DecisionSource, tenantId: string, runId?: string): DecisionDraft | undefined {
    return this.#slots.get(slotKey(tenantId, runId))?.get(source);
  }

  /** A publisher for one source, to hand to an engine. */
  sink(source: DecisionSource): DecisionSinkOf {
    return {
      publish: (draft) => this.publishFrom(source, draft),
      publishBreakerEvent: (event) => this.publishBreakerEvent(event),
    };
  }

  override forgetRun(tenantId: string, runId: string): void {
    this.#slots.delete(slotKey(tenantId, runId));
    super.forgetRun(tenantId, runId);
  }
}

function slotKey(tenantId: string, runId: string | undefined): string {
  return `${tenantId}\u0000${runId ?? ''}`;
}

function isPlain(draft: DecisionDraft): boolean {
  return draft.action === 'ALLOW' && draft.state === 'CLOSED' && draft.tier === undefined && draft.degraded !== true;
}
