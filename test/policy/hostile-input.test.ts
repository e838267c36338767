import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_POLICY_BYTES, parsePolicy } from '../../src/policy/load-policy.js';
import { MAX_REPORTED_ISSUES, PolicyError } from '../../src/policy/policy-error.js';
import { policyIssues } from './policy-test-helpers.js';

/** Parses `text`; passes when it is accepted or refused with a PolicyError, and only then. */
function parsesOrRefusesCleanly(text: string): void {
  try {
    parsePolicy(text, 'fuzz.yaml');
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    for (const issue of error.issues) {
      expect(issue.file).toBe('fuzz.yaml');
      expect(Number.isInteger(issue.line) && issue.line >= 1).toBe(true);
      expect(Number.isInteger(issue.column) && issue.column >= 1).toBe(true);
      expect(issue.path.length).toBeGreaterThan(0);
    }
  }
}

describe('hostile input', () => {
  it('refuses text over 1 MiB before parsing it', () => {
    const text = `# ${'x'.repeat(MAX_POLICY_BYTES)}\n`;
    const started = performance.now();
    const issues = policyIssues(() => parsePolicy(text, 'big.yaml'));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(issues).toEqual([
      { file: 'big.yaml', line: 1, column: 1, path: '(top level)', message: `is larger than ${MAX_POLICY_BYTES} bytes` },
    ]);
  });

  it('counts bytes, not characters, against the limit', () => {
    const text = `# ${'é'.repeat(MAX_POLICY_BYTES / 2)}\n`; // under 1 Mi characters, over 1 MiB
    expect(text.length).toBeLessThan(MAX_POLICY_BYTES);
    expect(policyIssues(() => parsePolicy(text, 'big.yaml'))[0]?.message).toMatch(/larger than/);
  });

  it('refuses an alias expansion bomb ("billion laughs") without expanding it', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let level = 1; level < 9; level++) {
      const previous = String.fromCharCode(96 + level);
      const name = String.fromCharCode(97 + level);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(',')}]`);
    }
    const text = `tenants:\n${levels.map((line) => `  ${line}`).join('\n')}\n`;
    const started = performance.now();
    const issues = policyIssues(() => parsePolicy(text, 'bomb.yaml'));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: 'bomb.yaml', line: 3 });
    expect(issues[0]?.message).toMatch(/resource exhaustion/);
  });

  it('refuses deeply nested flow collections', () => {
    const depth = 200_000;
    const text = `tiers: ${'['.repeat(depth)}${']'.repeat(depth)}\n`;
    const issues = policyIssues(() => parsePolicy(text, 'deep.yaml'));
    expect(issues[0]?.line).toBe(1);
  });

  it('refuses deeply nested block mappings', () => {
    const lines: string[] = [];
    for (let depth = 0; depth < 1000; depth++) lines.push(`${' '.repeat(depth)}k${depth}:`);
    const issues = policyIssues(() => parsePolicy(`${lines.join('\n')} 1\n`, 'deep.yaml'));
    expect(issues).toHaveLength(1);
    // how deep yaml's recursive composer gets depends on the stack; either way it is refused
    expect(issues[0]?.message).toMatch(/^(unknown key|is nested too deeply)/);
  });

  it('reports deep nesting once, however much stack is left when the file is parsed', () => {
    const lines: string[] = [];
    for (let depth = 0; depth < 1000; depth++) lines.push(`${' '.repeat(depth)}k${depth}:`);
    const text = `${lines.join('\n')} 1\n`;
    const counts = new Set<number>();
    // Parsing from deeper and deeper in the stack reaches every point where yaml's composer gives out.
    const parseAt = (frames: number): void => {
      if (frames > 0) return parseAt(frames - 1);
      counts.add(policyIssues(() => parsePolicy(text, 'deep.yaml')).length);
    };
    for (let frames = 0; frames < 9_000; frames += 40) {
      try {
        parseAt(frames);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err; // the test's own recursion ran out first
      }
    }
    expect([...counts]).toEqual([1]);
  });

  it('parses a 1 MiB file of many keys in linear time', () => {
    const entries: string[] = [];
    for (let i = 0; entries.join('\n').length < MAX_POLICY_BYTES - 40_000 && i < 200_000; i += 1000) {
      for (let j = i; j < i + 1000; j++) entries.push(`  t${j}: {}`);
    }
    const text = `tenants:\n${entries.join('\n')}\n  t0: {}\n`; // one duplicate, at the very end
    const started = performance.now();
    const issues = policyIssues(() => parsePolicy(text, 'many.yaml'));
    expect(performance.now() - started).toBeLessThan(20_000); // quadratic key handling would take minutes
    expect(issues).toEqual([expect.objectContaining({ line: entries.length + 2, path: 'tenants.t0' })]);
  });

  it('refuses binary junk', () => {
    const junk = String.fromCharCode(...Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
    parsesOrRefusesCleanly(junk);
    expect(() => parsePolicy(junk, 'junk.yaml')).toThrow(PolicyError);
    expect(() => parsePolicy('\u0000\u0001\u0002\uFFFE', 'junk.yaml')).toThrow(PolicyError);
  });

  it('caps the issues listed for a file with thousands of mistakes', () => {
    const text = `tenants:\n${Array.from({ length: 3000 }, (_, i) => `  t${i}: { tier: nope }`).join('\n')}\n`;
    const error = (() => {
      try {
        parsePolicy(text, 'many.yaml');
      } catch (caught) {
        return caught as PolicyError;
      }
      throw new Error('accepted');
    })();
    expect(error.issues).toHaveLength(MAX_REPORTED_ISSUES);
    expect(error.omittedIssues).toBe(3000 - MAX_REPORTED_ISSUES);
    expect(error.message.split('\n').at(-1)).toBe(`… and ${3000 - MAX_REPORTED_ISSUES} more`);
  });

  it('refuses __proto__ keys, which would otherwise vanish or touch prototypes', () => {
    const issues = policyIssues(() =>
      parsePolicy('__proto__: { polluted: true }\nprices:\n  __proto__: { input: 1, output: 1 }\n', 'proto.yaml'),
    );
    expect(issues.map((issue) => `${issue.line} ${issue.path}`)).toEqual(['1 __proto__', '3 prices.__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('throws nothing but PolicyError for random text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), parsesOrRefusesCleanly), { numRuns: 500 });
  });

  it('throws nothing but PolicyError for random YAML-ish text', () => {
    const token = fc.constantFrom(
      'tiers', 'tenants', 'free', 'pro', 'run', 'breaker', 'cooldownMs', 'stepCount', 'errorRatio', 'extends',
      'overrides', 'tier', 'defaultTier', 'prices', ':', ': ', '\n', '\n  ', '\n    ', '- ', '{', '}', '[', ']',
      ',', '&a ', '*a', '<<: ', '!!str ', '!x ', '"', "'", '#', '---', '-1', '0', '1e999', '.nan', 'null', '~', '?',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), (tokens) => parsesOrRefusesCleanly(tokens.join(''))),
      { numRuns: 1000 },
    );
  });

  it('throws nothing but PolicyError for random structured documents', () => {
    const value: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.constantFrom(1, -1, 0.5, 0, 1e9, 'pro', 'free', null, true),
        fc.dictionary(fc.constantFrom('tiers', 'tenants', 'free', 'pro', 'run', 'stepCount', 'breaker', 'cooldownMs', 'tier', 'extends', 'overrides'), tie('node'), { maxKeys: 4 }),
        fc.array(tie('node'), { maxLength: 3 }),
      ),
    })).node;
    fc.assert(fc.property(value, (document) => parsesOrRefusesCleanly(JSON.stringify(document) ?? '')), { numRuns: 500 });
  });
});
