// The health breakers of providers and models. Two layers, so that provider failure is detected
// fast without letting one tenant's spans degrade everyone:
//
// - shared breakers per provider and per (provider, model), fed by every tenant's calls, that open
//   only when failures come from at least `sharedMinTenants` tenants;
// - each tenant's own breakers per provider and per (provider, model), fed by its calls only,
//   created at its first failed or slow call and dropped once quiet again.
//
// A tier is blocked for a tenant when any of the four that cover it is OPEN.

import type { ProviderHealthSettings } from './degradation-schema.js';
import { HealthBreaker, type HealthBreakerView, type HealthKey, type HealthScope, type HealthTransition } from './health-breaker.js';

/** Shared (provider, model) breakers kept at most; idle ones go first. */
const MAX_SHARED = 2_048;

export class ProviderHealth {
  readonly #shared = new Map<string, HealthBreaker>();
  readonly #own = new Map<string, HealthBreaker>();

  constructor(
    private readonly now: () => number,
    private readonly settings: () => ProviderHealthSettings,
  ) {}

  /** Records a model call's health outcome; returns every transition it caused. */
  record(tenantId: string, provider: string, model: string, failure: boolean, slow: boolean): HealthTransition[] {
    const settings = this.settings();
    const call = { failure, slow, tenantId };
    const out: HealthTransition[] = [];
    out.push(...this.#sharedBreaker('PROVIDER', provider, '').record(call, settings));
    if (model !== '') out.push(...this.#sharedBreaker('MODEL', provider, model).record(call, settings));
    for (const [scope, m] of [['PROVIDER', ''], ['MODEL', model]] as const) {
      if (scope === 'MODEL' && model === '') continue;
      const id = keyId({ scope, provider, model: m, tenantId });
      let breaker = this.#own.get(id);
      if (breaker === undefined) {
        if (!failure && !slow) continue; // a tenant with only good calls needs no breaker of its own
        breaker = new HealthBreaker({ scope, provider, model: m, tenantId }, this.now, settings);
        this.#own.set(id, breaker);
      }
      out.push(...breaker.record(call, settings));
    }
    return out;
  }

  /** Time-driven transitions (OPEN wait elapsed, half-open timeout) of every breaker; drops quiet ones. */
  tick(): HealthTransition[] {
    const settings = this.settings();
    const out: HealthTransition[] = [];
    for (const breaker of this.#shared.values()) out.push(...breaker.tick(settings));
    for (const [id, breaker] of this.#own) {
      out.push(...breaker.tick(settings));
      if (breaker.isQuiet(settings)) this.#own.delete(id);
    }
    return out;
  }

  /**
   * What the breakers covering `provider`/`model` for the tenant (shared or its own) say: the OPEN
   * ones, and the last time any of them left OPEN (null if none did).
   */
  coverage(tenantId: string, provider: string, model: string): { open: HealthBreakerView[]; leftOpenAt: number | null } {
    const open: HealthBreakerView[] = [];
    let leftOpenAt: number | null = null;
    for (const breaker of [
      this.#shared.get(keyId({ scope: 'PROVIDER', provider, model: '', tenantId: '' })),
      this.#shared.get(keyId({ scope: 'MODEL', provider, model, tenantId: '' })),
      this.#own.get(keyId({ scope: 'PROVIDER', provider, model: '', tenantId })),
      this.#own.get(keyId({ scope: 'MODEL', provider, model, tenantId })),
    ]) {
      if (breaker === undefined) continue;
      if (breaker.state() === 'OPEN') open.push(breaker.view(this.settings()));
      const left = breaker.leftOpenAt();
      if (left !== null && (leftOpenAt === null || left > leftOpenAt)) leftOpenAt = left;
    }
    return { open, leftOpenAt };
  }

  /** The OPEN breakers that block `provider`/`model` for the tenant (shared or its own). */
  blocking(tenantId: string, provider: string, model: string): HealthBreakerView[] {
    return this.coverage(tenantId, provider, model).open;
  }

  /** The shared breakers, and the tenant's own when a tenant is given (all tenants' when '*'). */
  views(tenantId?: string): HealthBreakerView[] {
    const settings = this.settings();
    const out = [...this.#shared.values()].map((b) => b.view(settings));
    if (tenantId !== undefined) {
      for (const breaker of this.#own.values()) {
        if (tenantId === '*' || breaker.key.tenantId === tenantId) out.push(breaker.view(settings));
      }
    }
    return out;
  }

  /** Drops shared breakers that are CLOSED and saw no call for `idleMs`. */
  evictIdle(idleMs: number): void {
    const settings = this.settings();
    const at = this.now();
    for (const [id, breaker] of this.#shared) {
      if (at - breaker.lastCallAt >= idleMs && breaker.state() === 'CLOSED' && breaker.isQuiet(settings)) this.#shared.delete(id);
    }
  }

  #sharedBreaker(scope: HealthScope, provider: string, model: string): HealthBreaker {
    const key: HealthKey = { scope, provider, model, tenantId: '' };
    const id = keyId(key);
    let breaker = this.#shared.get(id);
    if (breaker === undefined) {
      if (this.#shared.size >= MAX_SHARED) this.#dropIdlestShared();
      const settings = this.settings();
      breaker = new HealthBreaker(key, this.now, settings);
      this.#shared.set(id, breaker);
    }
    return breaker;
  }

  #dropIdlestShared(): void {
    let idlest: [string, HealthBreaker] | undefined;
    for (const entry of this.#shared) {
      if (entry[1].state() !== 'CLOSED') continue;
      if (idlest === undefined || entry[1].lastCallAt < idlest[1].lastCallAt) idlest = entry;
    }
    if (idlest !== undefined) this.#shared.delete(idlest[0]);
  }
}

function keyId(key: HealthKey): string {
  return `${key.scope}\u0000${key.tenantId}\u0000${key.provider}\u0000${key.model}`;
}
