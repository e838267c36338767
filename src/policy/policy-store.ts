// The policy in force: one PolicyDocument at a time, effective policies cached per tenant, listeners
// told of every change (persistence and the audit log hang off onChange), and an optional file
// watch that reloads breakwater.yaml. A bad reload never replaces a good policy: the last good one
// stays in force and the PolicyError goes to onError and lastReloadError.

import { watch, type FSWatcher, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { effectivePolicy } from './effective-policy.js';
import { builtinPolicy, loadPolicyFile } from './load-policy.js';
import { PolicyError } from './policy-error.js';
import type { EffectivePolicy, PolicyDocument } from './policy-types.js';
import { validatePolicyDocument } from './resolve-policy.js';

/** `source` says where the change came from: a file path, or the mutation's name. */
export type PolicyChangeListener = (document: PolicyDocument, source: string, previous: PolicyDocument) => void;

export interface WatchFileOptions {
  /** a reload that failed (the policy in force is unchanged), or a listener that threw on a reload */
  onError: (error: Error) => void;
  /** quiet time after the last file event before reloading; editors write a file in several steps */
  debounceMs?: number;
  /** how long the file must have gone unmodified before it is read: a writer pausing mid-file is not read half-way */
  settleMs?: number;
  /** why a reloaded document must not be put in force, or undefined (it is refused, reported through onError) */
  vet?: (next: PolicyDocument) => string | undefined;
}

/** A reload refused by the watcher's `vet`: the policy in force is unchanged. */
export class PolicyReloadRefusedError extends Error {
  override name = 'PolicyReloadRefusedError';
}

// Effective policies of unlisted tenants are cached too; past this many the cache starts over, so a
// stream of made-up tenant ids cannot grow it without bound.
const MAX_CACHED_TENANTS = 10_000;

export class PolicyStore {
  private document: PolicyDocument;
  private readonly effectiveByTenant = new Map<string, EffectivePolicy>();
  private readonly listeners = new Set<PolicyChangeListener>();
  private watcher: FSWatcher | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  // bumped by every reload and by close(): a slow reload that finishes late is dropped
  private reloadGeneration = 0;
  // what the watched file last said; a reload equal to it is no change (and keeps run-time changes)
  private lastFileDocument: PolicyDocument | undefined;
  private overlay: (fileDocument: PolicyDocument) => PolicyDocument = (doc) => doc;

  /** The last file reload's PolicyError; undefined once a reload succeeds. */
  lastReloadError: PolicyError | undefined;

  constructor(initial: PolicyDocument = builtinPolicy()) {
    this.document = validatePolicyDocument(initial, 'initial policy');
  }

  current(): PolicyDocument {
    return this.document;
  }

  /** The tenant's effective policy, computed once per document. */
  forTenant(tenantId: string): EffectivePolicy {
    let effective = this.effectiveByTenant.get(tenantId);
    if (effective === undefined) {
      effective = effectivePolicy(this.document, tenantId);
      if (this.effectiveByTenant.size >= MAX_CACHED_TENANTS) this.effectiveByTenant.clear();
      this.effectiveByTenant.set(tenantId, effective);
    }
    return effective;
  }

  /**
   * Puts `doc` in force and tells the listeners. A document from parsePolicy or a run-time change
   * is taken as is; any other is checked first (PolicyError). Every listener runs even if one throws;
   * the first error is then rethrown.
   */
  replace(doc: PolicyDocument, source: string): void {
    const next = validatePolicyDocument(doc, source);
    const previous = this.document;
    this.document = next;
    this.effectiveByTenant.clear();
    const errors: unknown[] = [];
    for (const listener of [...this.listeners]) {
      try {
        listener(next, source, previous);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} policy change listeners failed`);
  }

  /**
   * What a reloaded file is passed through before it is put in force: the run-time changes are laid
   * over it again, so reloading the file does not undo them.
   */
  setOverlay(overlay: (fileDocument: PolicyDocument) => PolicyDocument): void {
    this.overlay = overlay;
  }

  /** Calls `listener` after every change; returns the function that stops it. */
  onChange(listener: PolicyChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Reloads `path` whenever it changes. The directory is watched, not the file: editors and
   * config-management tools save by writing a new file and renaming it over the old one, which
   * would leave a watch on the old file's inode deaf. Load the file once before calling this.
   */
  watchFile(path: string, options: WatchFileOptions): void {
    if (this.watcher !== undefined) throw new Error('PolicyStore is already watching a file; close() it first');
    const name = basename(path);
    this.lastFileDocument = this.document;
    // persistent: false: the watch alone does not keep the process alive
    this.watcher = watch(dirname(path), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed.toString() !== name) return;
      this.scheduleReload(path, options, options.debounceMs ?? 100);
    });
    this.watcher.on('error', (error) => options.onError(error));
  }

  /** Stops watching; a reload already under way is dropped. */
  close(): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    this.reloadGeneration++;
  }

  private scheduleReload(path: string, options: WatchFileOptions, delayMs: number, seen?: Stats): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => void this.reload(path, options, seen), delayMs);
    this.debounceTimer.unref();
  }

  /** `seen`: the file's stat one settle time ago, when it was too fresh to read */
  private async reload(path: string, options: WatchFileOptions, seen?: Stats): Promise<void> {
    const { onError, vet } = options;
    const generation = ++this.reloadGeneration;
    const settleMs = options.settleMs ?? 500;
    const before = await statOrUndefined(path);
    if (generation !== this.reloadGeneration) return;
    // A file modified moments ago may be half-written: read it once it has stayed unchanged for the
    // settle time, by its age or, for a clock that disagrees with the file system's, by two stats.
    const settled = before === undefined || Date.now() - before.mtimeMs >= settleMs || sameFile(seen, before);
    if (!settled) return this.scheduleReload(path, options, settleMs, before);
    let loaded: PolicyDocument;
    try {
      // the file was there when watching began; its disappearing now is an error, not "use defaults"
      loaded = await loadPolicyFile(path, { explicit: true });
      // written to while it was read: what was read may be half of either version
      const after = await statOrUndefined(path);
      if (generation !== this.reloadGeneration) return;
      if (!sameFile(before, after)) return this.scheduleReload(path, options, settleMs);
    } catch (error) {
      if (generation !== this.reloadGeneration) return;
      const policyError = error instanceof PolicyError ? error : undefined;
      this.lastReloadError = policyError;
      onError(policyError ?? (error as Error));
      return;
    }
    if (generation !== this.reloadGeneration) return;
    this.lastReloadError = undefined;
    // Editors touch files without changing them: an unchanged file is not a change to announce, and
    // must not undo run-time changes made since. A changed file replaces the whole document.
    if (this.lastFileDocument !== undefined && samePolicy(loaded, this.lastFileDocument)) return;
    const refusal = vet?.(loaded);
    if (refusal !== undefined) {
      onError(new PolicyReloadRefusedError(`${path} not reloaded: ${refusal}; the policy in force is unchanged`));
      return;
    }
    this.lastFileDocument = loaded;
    try {
      this.replace(this.overlay(loaded), path);
    } catch (error) {
      onError(error as Error);
    }
  }
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  return stat(path).catch(() => undefined);
}

function sameFile(a: Stats | undefined, b: Stats | undefined): boolean {
  return a !== undefined && b !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

// Documents come from the same resolution, so equal content serializes with the same key order.
function samePolicy(a: PolicyDocument, b: PolicyDocument): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
