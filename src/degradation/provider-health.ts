// The health breakers of providers and models. Two layers, so that provider failure is detected
// fast without letting one tenant's spans degrade everyone:
//
// - shared breakers per provider and per (provider, model), fed by every tenant's calls, that open
//   only when at least `sharedMinTenants` tenants are over the thresholds on their own calls;
// - each tenant's own breakers per provider and per (provider, model), fed by its calls only,
//   created at its first failed or slow call and dropped once quiet again.
//
// A tier is blocked for a tenant when any of the four that cover it is OPEN. When a shared breaker
// passes its probes, every tenant's own breakers on the same calls forget the incident's failures.

import type { ProviderHealthSettings } from './degradation-schema.js';
import { HealthBreaker, type HealthBreakerView, type HealthCall, type HealthTransition } from './health-breaker.js';

/** Shared (provider, model) breakers kept at most; idle ones go first. */
const MAX_SHARED = 2_048;

/**
 * Breakers by provider, then model ('' for the provider's own, PROVIDER breaker). Looked up on
 * every model span, so by nested maps: no key string is built per call.
 */
class BreakerTable {
  readonly #byProvider = new Map<string, Map<string, HealthBreaker>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(provider: string, model: string): HealthBreaker | undefined {
    return this.#byProvider.get(provider)?.get(model);
  }

  add(breaker: HealthBreaker): void {
    const { provider, model } = breaker.key;
    let models = this.#byProvider.get(provider);
    if (models === undefined) this.#byProvider.set(provider, (models = new Map()));
    if (!models.has(model)) this.#size++;
    models.set(model, breaker);
  }

  delete(breaker: HealthBreaker): void {
    const { provider, model } = breaker.key;
    const models = this.#byProvider.get(provider);
    if (models?.get(model) !== breaker) return;
    models.delete(model);
    this.#size--;
    if (models.size === 0) this.#byProvider.delete(provider);
  }

  *[Symbol.iterator](): Iterator<HealthBreaker> {
    for (const models of this.#byProvider.values()) yield* models.values();
  }
}

export class ProviderHealth {
  readonly #shared = new BreakerTable();
  /** each tenant's own breakers (only tenants that have some) */
  readonly #own = new Map<string, BreakerTable>();

  constructor(
    private readonly now: () => number,
    private readonly settings: () => ProviderHealthSettings,
  ) {}

  /** Records a model call's health outcome as of `at`; appends every transition it caused to `out` and returns it. */
  record(tenantId: string, provider: string, model: string, failure: boolean, slow: boolean, out: HealthTransition[] = [], at = this.now(), startedAt?: number): HealthTransition[] {
    const settings = this.settings();
    const first = out.length;
    const call: HealthCall = startedAt === undefined ? { failure, slow, tenantId } : { failure, slow, tenantId, startedAt };
    this.#sharedBreaker(provider, '', settings).record(call, settings, out, at);
    if (model !== '') this.#sharedBreaker(provider, model, settings).record(call, settings, out, at);
    // Before the tenant's own breakers see the call: on old evidence they would re-open at once.
    this.#afterRecoveries(out, first, settings);
    // A tenant with only good calls needs no breaker of its own.
    const bad = failure || slow;
    let mine = this.#own.get(tenantId);
    if (mine === undefined && bad) this.#own.set(tenantId, (mine = new BreakerTable()));
    if (mine !== undefined) {
      this.#recordOwn(mine, tenantId, provider, '', bad, call, settings, out, at);
      if (model !== '') this.#recordOwn(mine, tenantId, provider, model, bad, call, settings, out, at);
    }
    return out;
  }

  /**
   * The tenant's own breakers covering `provider`/`model` forget the calls up to `before`: its
   * promotion to that rung starts from a clean slate.
   */
  forget(tenantId: string, provider: string, model: string, before: number): void {
    const mine = this.#own.get(tenantId);
    if (mine === undefined) return;
    const settings = this.settings();
    mine.get(provider, '')?.forget(before, settings);
    if (model !== '') mine.get(provider, model)?.forget(before, settings);
  }

  /** A shared breaker closed on passed probes: every tenant's own breakers on its calls forget what came before the probes. */
  #afterRecoveries(out: readonly HealthTransition[], first: number, settings: ProviderHealthSettings): void {
    for (let i = first; i < out.length; i++) {
      const t = out[i] as HealthTransition;
      if (t.key.tenantId !== '' || t.cause !== 'probes_passed') continue;
      const before = this.#shared.get(t.key.provider, t.key.model)?.countsFrom ?? t.at;
      for (const mine of this.#own.values()) {
        for (const breaker of mine) {
          // A provider's recovery covers all its models; a model's, that model and the provider breaker it feeds.
          if (breaker.key.provider !== t.key.provider) continue;
          if (t.key.model === '' || breaker.key.model === '' || breaker.key.model === t.key.model) breaker.forget(before, settings);
        }
      }
    }
  }

  /** A tenant's own breaker for the provider (model '') or a model: created by a bad call only. */
  #recordOwn(mine: BreakerTable, tenantId: string, provider: string, model: string, bad: boolean, call: HealthCall, settings: ProviderHealthSettings, out: HealthTransition[], at: number): void {
    let breaker = mine.get(provider, model);
    if (breaker === undefined) {
      if (!bad) return;
      mine.add((breaker = this.#breaker(tenantId, provider, model, settings)));
    }
    breaker.record(call, settings, out, at);
  }

  /** Time-driven transitions (OPEN wait elapsed, half-open timeout) of every breaker; drops quiet ones. */
  tick(): HealthTransition[] {
    const settings = this.settings();
    const out: HealthTransition[] = [];
    for (const breaker of this.#shared) breaker.tick(settings, out);
    for (const [tenantId, mine] of this.#own) {
      for (const breaker of [...mine]) {
        breaker.tick(settings, out);
        if (breaker.isQuiet(settings)) mine.delete(breaker);
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
    const mine = this.#own.get(tenantId);
    const byModel = model !== ''; // model '' is the provider breaker, already counted
    for (const breaker of [
      this.#shared.get(provider, ''),
      byModel ? this.#shared.get(provider, model) : undefined,
      mine?.get(provider, ''),
      byModel ? mine?.get(provider, model) : undefined,
    ]) {
      if (breaker === undefined) continue;
      if (breaker.state() === 'OPEN') open.push(breaker.view(this.settings()));
      const left = breaker.leftOpenAt();
      if (left !== null && (leftOpenAt === null || left > leftOpenAt)) leftOpenAt = left;
    }
    return { open, leftOpenAt };
  }

  /**
   * Since when the shared breakers covering `provider`/`model` count calls (-Infinity: always): a
   * probe of a tenant's that started before the fleet proved the recovery is the incident's, not the rung's.
   */
  cleanSince(provider: string, model: string): number {
    const byProvider = this.#shared.get(provider, '')?.countsFrom ?? -Infinity;
    return model === '' ? byProvider : Math.max(byProvider, this.#shared.get(provider, model)?.countsFrom ?? -Infinity);
  }

  /** The OPEN breakers that block `provider`/`model` for the tenant (shared or its own). */
  blocking(tenantId: string, provider: string, model: string): HealthBreakerView[] {
    return this.coverage(tenantId, provider, model).open;
  }

  /** The shared breakers, and the tenant's own when a tenant is given (all tenants' when '*'). */
  views(tenantId?: string): HealthBreakerView[] {
    const settings = this.settings();
    const out = [...this.#shared].map((b) => b.view(settings));
    if (tenantId !== undefined) {
      for (const [owner, mine] of this.#own) {
        if (tenantId === '*' || owner === tenantId) for (const breaker of mine) out.push(breaker.view(settings));
      }
    }
    return out;
  }

  /** Drops shared breakers that are CLOSED and saw no call for `idleMs`. */
  evictIdle(idleMs: number): void {
    const settings = this.settings();
    const at = this.now();
    for (const breaker of [...this.#shared]) {
      if (at - breaker.lastCallAt >= idleMs && breaker.state() === 'CLOSED' && breaker.isQuiet(settings)) this.#shared.delete(breaker);
    }
  }

  #sharedBreaker(provider: string, model: string, settings: ProviderHealthSettings): HealthBreaker {
    let breaker = this.#shared.get(provider, model);
    if (breaker === undefined) {
      if (this.#shared.size >= MAX_SHARED) this.#dropIdlestShared();
      this.#shared.add((breaker = this.#breaker('', provider, model, settings)));
    }
    return breaker;
  }

  #breaker(tenantId: string, provider: string, model: string, settings: ProviderHealthSettings): HealthBreaker {
    return new HealthBreaker({ scope: model === '' ? 'PROVIDER' : 'MODEL', provider, model, tenantId }, this.now, settings);
  }

  #dropIdlestShared(): void {
    let idlest: HealthBreaker | undefined;
    for (const breaker of this.#shared) {
      if (breaker.state() !== 'CLOSED') continue;
      if (idlest === undefined || breaker.lastCallAt < idlest.lastCallAt) idlest = breaker;
    }
    if (idlest !== undefined) this.#shared.delete(idlest);
  }
}
