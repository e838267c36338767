import { mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyTenantPolicy } from '../../src/policy/effective-policy.js';
import { builtinPolicy, loadPolicyFile, parsePolicy } from '../../src/policy/load-policy.js';
import { PolicyError } from '../../src/policy/policy-error.js';
import { PolicyStore } from '../../src/policy/policy-store.js';
import type { PolicyDocument } from '../../src/policy/policy-types.js';

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMs`. */
async function eventually(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Writes like an editor: a new file renamed over the old one. */
async function saveAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, text);
  await rename(temporary, path);
}

describe('PolicyStore', () => {
  it('starts from the built-in policy and caches effective policies until a change', () => {
    const store = new PolicyStore();
    expect(store.current()).toBe(builtinPolicy());
    const first = store.forTenant('acme');
    expect(store.forTenant('acme')).toBe(first);
    expect(first.tier).toBe('free');

    store.replace(applyTenantPolicy(store.current(), 'acme', { tier: 'pro' }), 'mutation');
    const second = store.forTenant('acme');
    expect(second).not.toBe(first);
    expect(second.tier).toBe('pro');
  });

  it('tells listeners about every change, until they unsubscribe', () => {
    const store = new PolicyStore();
    const seen: [string, string, string][] = [];
    const stop = store.onChange((doc, source, previous) => seen.push([source, doc.defaultTier, previous.defaultTier]));
    store.replace(parsePolicy('defaultTier: pro\n', 'a.yaml'), 'a.yaml');
    stop();
    store.replace(parsePolicy('defaultTier: enterprise\n', 'b.yaml'), 'b.yaml');
    expect(seen).toEqual([['a.yaml', 'pro', 'free']]);
  });

  it('runs every listener even when one throws, then rethrows', () => {
    const store = new PolicyStore();
    let reached = false;
    store.onChange(() => {
      throw new Error('listener broke');
    });
    store.onChange(() => {
      reached = true;
    });
    expect(() => store.replace(parsePolicy('defaultTier: pro\n', 'a.yaml'), 'a.yaml')).toThrow('listener broke');
    expect(reached).toBe(true);
    expect(store.current().defaultTier).toBe('pro');
  });

  it('checks a document it did not build', () => {
    const store = new PolicyStore();
    const handMade = { ...builtinPolicy(), defaultTier: 'missing' } as PolicyDocument;
    expect(() => store.replace(handMade, 'hand')).toThrow(PolicyError);
    expect(store.current()).toBe(builtinPolicy());
  });

  describe('watchFile', () => {
    let dir: string;
    let store: PolicyStore;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'breakwater-watch-'));
      store = new PolicyStore();
    });
    afterEach(async () => {
      store.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('reloads a good change and keeps the last good policy on a bad one', async () => {
      const path = join(dir, 'breakwater.yaml');
      await writeFile(path, 'defaultTier: free\n');
      store.replace(await loadPolicyFile(path), path);
      const errors: Error[] = [];
      const sources: string[] = [];
      store.onChange((_doc, source) => sources.push(source));
      store.watchFile(path, { onError: (error) => errors.push(error), debounceMs: 20 });

      await saveAtomically(path, 'defaultTier: pro\n');
      await eventually(() => store.current().defaultTier === 'pro');
      expect(store.forTenant('anyone').tier).toBe('pro');
      expect(sources).toEqual([path]);

      await writeFile(path, 'defaultTier: pro\ntiers:\n  pro:\n    run: { stepCount: -1 }\n');
      await eventually(() => errors.length > 0);
      expect(store.current().defaultTier).toBe('pro');
      expect(store.current().tiers.pro?.run.stepCount).toBe(builtinPolicy().tiers.pro?.run.stepCount);
      expect(errors[0]).toBeInstanceOf(PolicyError);
      expect(store.lastReloadError?.issues[0]).toMatchObject({ file: path, line: 4, path: 'tiers.pro.run.stepCount' });

      await saveAtomically(path, 'defaultTier: enterprise\n');
      await eventually(() => store.current().defaultTier === 'enterprise');
      expect(store.lastReloadError).toBeUndefined();
      expect(sources).toEqual([path, path]);
    });

    it('reports a deleted file and keeps the policy', async () => {
      const path = join(dir, 'breakwater.yaml');
      await writeFile(path, 'defaultTier: pro\n');
      store.replace(await loadPolicyFile(path), path);
      const errors: Error[] = [];
      store.watchFile(path, { onError: (error) => errors.push(error), debounceMs: 20 });
      await rm(path);
      await eventually(() => errors.length > 0);
      expect(errors[0]?.message).toMatch(/does not exist/);
      expect(store.current().defaultTier).toBe('pro');
    });

    it('does not announce a rewrite with the same content, and ignores other files', async () => {
      const path = join(dir, 'breakwater.yaml');
      await writeFile(path, 'defaultTier: pro\n');
      store.replace(await loadPolicyFile(path), path);
      let changes = 0;
      store.onChange(() => changes++);
      store.watchFile(path, { onError: (error) => expect.fail(error.message), debounceMs: 20 });
      await saveAtomically(path, '# same policy\ndefaultTier: pro\n');
      await writeFile(join(dir, 'other.yaml'), 'defaultTier: nope\n');
      await saveAtomically(path, 'defaultTier: enterprise\n'); // a real change, to know the others were seen
      await eventually(() => store.current().defaultTier === 'enterprise');
      expect(changes).toBe(1);
    });

    it('never puts a half-written file in force, even when its writer pauses mid-file', async () => {
      const path = join(dir, 'breakwater.yaml');
      await writeFile(path, 'defaultTier: enterprise\n');
      store.replace(await loadPolicyFile(path), path);
      const seen: PolicyDocument[] = [];
      store.onChange((doc) => seen.push(doc));
      store.watchFile(path, { onError: (error) => expect.fail(error.message) }); // the defaults, as the service runs
      // Written in place, not renamed: the first half is a valid policy of its own.
      const file = await open(path, 'w');
      await file.write('defaultTier: pro\n');
      await new Promise((resolve) => setTimeout(resolve, 250));
      await file.write('tiers:\n  pro:\n    run: { stepCount: 7 }\n');
      await file.close();
      await eventually(() => seen.length > 0);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(seen.map((doc) => [doc.defaultTier, doc.tiers.pro?.run.stepCount])).toEqual([['pro', 7]]);
    });

    it('stops reloading after close()', async () => {
      const path = join(dir, 'breakwater.yaml');
      await writeFile(path, 'defaultTier: free\n');
      store.watchFile(path, { onError: () => {}, debounceMs: 20 });
      expect(() => store.watchFile(path, { onError: () => {} })).toThrow(/already watching/);
      store.close();
      await saveAtomically(path, 'defaultTier: pro\n');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(store.current().defaultTier).toBe('free');
    });
  });
});
