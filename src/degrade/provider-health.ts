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
import { HealthBreaker, type HealthBreakerView, type HealthTransition } from './health-breaker.js';

/** Shared (provider, model) breakers kept at most; idle ones go first. */
const MAX_SHARED = 2_048;

export class ProviderHealth {
  // Looked up on every model span, so by nested maps (no key string built per call). Model '' is
  // the provider's own (PROVIDER) breaker.
  /** shared breakers: provider -> model -> breaker */
  readonly #shared = new Map<string, Map<string, HealthBreaker>>();
  #sharedCount = 0;
  /** tenants' own breakers: tenant -> provider -> model -> breaker */
  readonly #own = new Map<string, Map<string, Map<string, HealthBreaker>>>();

  constructor(
    private readonly now: () => number,
    private readonly settings: () => ProviderHealthSettings,
  ) {}

  /** Records a model call's health outcome; appends every transition it caused to `out` and returns it. */
  record(tenantId: string, provider: string, model: string, failure: boolean, slow: boolean, out: HealthTransition[] = []): HealthTransition[] {
    const settings = this.settings();
    const call = { failure, slow, tenantId };
    this.#sharedBreaker(provider, '', settings).record(call, settings, out);
    if (model !== '') this.#sharedBreaker(provider, model, settings).record(call, settings, out);
    const bad = failure || slow;
    let mine = this.#own.get(tenantId);
    if (mine === undefined) {
      if (!bad) return out; // a tenant with only good calls needs no breaker of its own
      mine = new Map();
      this.#own.set(tenantId, mine);
    }
    for (const m of model === '' ? ONLY_PROVIDER : ['', model]) {
      let models = mine.get(provider);
      let breaker = models?.get(m);
      if (breaker === undefined) {
        if (!bad) continue;
        breaker = new HealthBreaker({ scope: m === '' ? 'PROVIDER' : 'MODEL', provider, model: m, tenantId }, this.now, settings);
        if (models === undefined) mine.set(provider, (models = new Map()));
        models.set(m, breaker);
      }
      breaker.record(call, settings, out);
    }
    return out;
  }

  /** Time-driven transitions (OPEN wait elapsed, half-open timeout) of every breaker; drops quiet ones. */
  tick(): HealthTransition[] {
    const settings = this.settings();
    const out: HealthTransition[] = [];
    for (const models of this.#shared.values()) for (const breaker of models.values()) breaker.tick(settings, out);
    for (const [tenantId, mine] of this.#own) {
      for (const [provider, models] of mine) {
        for (const [model, breaker] of models) {
          breaker.tick(settings, out);
          if (breaker.isQuiet(settings)) models.delete(model);
        }
        if (models.size === 0) mine.delete(provider);
      }
      if (mine.size === 0) this.#own.delete(tenantId);
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
    const shared = this.#shared.get(provider);
    const mine = this.#own.get(tenantId)?.get(provider);
    const byModel = model !== ''; // model '' is the provider breaker, already counted
    for (const breaker of [shared?.get(''), byModel ? shared?.get(model) : undefined, mine?.get(''), byModel ? mine?.get(model) : undefined]) {
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
    const out = [...breakersOf(this.#shared)].map((b) => b.view(settings));
    if (tenantId !== undefined) {
      for (const [owner, mine] of this.#own) {
        if (tenantId === '*' || owner === tenantId) for (const breaker of breakersOf(mine)) out.push(breaker.view(settings));
      }
    }
    return out;
  }

  /** Drops shared breakers that are CLOSED and saw no call for `idleMs`. */
  evictIdle(idleMs: number): void {
    const settings = this.settings();
    const at = this.now();
    for (const breaker of [...breakersOf(this.#shared)]) {
      if (at - breaker.lastCallAt >= idleMs && breaker.state() === 'CLOSED' && breaker.isQuiet(settings)) this.#dropShared(breaker);
    }
  }

  #sharedBreaker(provider: string, model: string, settings: ProviderHealthSettings): HealthBreaker {
    let models = this.#shared.get(provider);
    let breaker = models?.get(model);
    if (breaker === undefined) {
      if (this.#sharedCount >= MAX_SHARED) this.#dropIdlestShared();
      breaker = new HealthBreaker({ scope: model === '' ? 'PROVIDER' : 'MODEL', provider, model, tenantId: '' }, this.now, settings);
      models = this.#shared.get(provider); // the drop may have removed the provider's map
      if (models === undefined) this.#shared.set(provider, (models = new Map()));
      models.set(model, breaker);
      this.#sharedCount++;
    }
    return breaker;
  }

  #dropIdlestShared(): void {
    let idlest: HealthBreaker | undefined;
    for (const breaker of breakersOf(this.#shared)) {
      if (breaker.state() !== 'CLOSED') continue;
      if (idlest === undefined || breaker.lastCallAt < idlest.lastCallAt) idlest = breaker;
    }
    if (idlest !== undefined) this.#dropShared(idlest);
  }

  #dropShared(breaker: HealthBreaker): void {
    const models = this.#shared.get(breaker.key.provider);
    if (models?.delete(breaker.key.model)) this.#sharedCount--;
    if (models?.size === 0) this.#shared.delete(breaker.key.provider);
  }
}

const ONLY_PROVIDER = [''];

function* breakersOf(byProvider: Map<string, Map<string, HealthBreaker>>): Iterable<HealthBreaker> {
  for (const models of byProvider.values()) yield* models.values();
}
