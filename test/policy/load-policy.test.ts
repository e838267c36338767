import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_TIERS } from '../../src/policy/builtin-tiers.js';
import { builtinPolicy, loadPolicyFile, parsePolicy } from '../../src/policy/load-policy.js';
import { PolicyError } from '../../src/policy/policy-error.js';
import {
  breakerSchema,
  errorRatioSettingsSchema,
  modelPriceSchema,
  policyFileSchema,
  tenantEntrySchema,
  tierPatchSchema,
} from '../../src/policy/policy-schema.js';
import { RUN_METRICS } from '../../src/windows/metric-names.js';
import { policyIssues, policyIssuesAsync, yaml } from './policy-test-helpers.js';

const EXAMPLE_PATH = new URL('../../breakwater.example.yaml', import.meta.url);

describe('parsePolicy: valid files', () => {
  it('parses breakwater.example.yaml', async () => {
    const doc = parsePolicy(await readFile(EXAMPLE_PATH, 'utf8'), 'breakwater.example.yaml');
    expect(doc.defaultTier).toBe('free');
    expect(Object.keys(doc.tiers)).toEqual(['free', 'pro', 'enterprise', 'research']);
    expect(doc.prices['gpt-4o']).toEqual({ input: 2.5, output: 10 });
    expect(doc.tiers.pro?.run.stepCount).toBe(1000);
    expect(doc.tiers.pro?.run).not.toHaveProperty('costUsd');
    expect(doc.tiers.research?.run.durationSeconds).toBe(14400);
    expect(doc.tiers.research?.run.toolCallsPerMinute).toBe(BUILTIN_TIERS.pro?.run.toolCallsPerMinute);
    expect(doc.tenants.acme).toMatchObject({ tier: 'pro', overrides: { run: { toolCallsPerMinute: 120 } } });
    expect(doc.tenants.initech).toEqual({ tier: 'free', overrides: {} });
  });

  it('breakwater.example.yaml shows every key', async () => {
    const example = await readFile(EXAMPLE_PATH, 'utf8');
    const keys = [
      ...Object.keys(policyFileSchema.shape),
      ...Object.keys(tierPatchSchema.shape),
      ...Object.keys(breakerSchema.shape),
      ...Object.keys(errorRatioSettingsSchema.shape),
      ...Object.keys(tenantEntrySchema.shape),
      ...Object.keys(modelPriceSchema.shape),
      ...RUN_METRICS,
    ];
    for (const key of keys) expect(example, key).toMatch(new RegExp(`(^|[\\s{])${key}:`, 'm'));
  });

  it('gives the built-in tiers for an empty file, a comment-only file and an empty mapping', () => {
    for (const text of ['', '# nothing here\n', '{}\n', '---\n']) {
      const doc = parsePolicy(text, 'breakwater.yaml');
      expect(doc).toEqual(builtinPolicy());
      expect(Object.keys(doc.tiers)).toEqual(['free', 'pro', 'enterprise']);
    }
  });

  it('built-in limits grow from free to enterprise', () => {
    const { free, pro, enterprise } = builtinPolicy().tiers;
    for (const metric of ['tokenVelocity60s', 'toolCallsPerMinute', 'stepCount', 'costUsd'] as const) {
      expect(free!.run[metric]!).toBeLessThan(pro!.run[metric]!);
      expect(pro!.run[metric]!).toBeLessThan(enterprise!.run[metric]!);
    }
  });

  it('lays a file tier over the built-in tier of the same name, field by field', () => {
    const doc = parsePolicy(
      yaml(`
        tiers:
          free:
            run: { stepCount: 7 }
            breaker: { probeSteps: 9 }
      `),
      'breakwater.yaml',
    );
    expect(doc.tiers.free).toEqual({
      ...BUILTIN_TIERS.free,
      run: { ...BUILTIN_TIERS.free!.run, stepCount: 7 },
      breaker: { ...BUILTIN_TIERS.free!.breaker, probeSteps: 9 },
    });
  });

  it('accepts YAML anchors and merge keys for shared settings', () => {
    const doc = parsePolicy(
      yaml(`
        tiers:
          gold: &gold
            extends: pro
            run: { stepCount: 5000 }
          platinum:
            <<: *gold
            warnFraction: 0.95
      `),
      'breakwater.yaml',
    );
    expect(doc.tiers.platinum?.run.stepCount).toBe(5000);
    expect(doc.tiers.platinum?.warnFraction).toBe(0.95);
  });

  it('returns a frozen document', () => {
    const doc = parsePolicy('tenants: { acme: { tier: pro } }\n', 'breakwater.yaml');
    expect(Object.isFrozen(doc)).toBe(true);
    expect(Object.isFrozen(doc.tiers.pro?.run)).toBe(true);
    expect(() => {
      (doc.tenants.acme as { tier: string }).tier = 'enterprise';
    }).toThrow(TypeError);
  });
});

describe('parsePolicy: every problem names file:line:column and the key path', () => {
  const text = yaml(`
    defaultTier: free
    tiers:
      free:
        run:
          toolCallsPerMinute: 30
          stepCont: 100
          costUsd: -1
        breaker:
          cooldownMs: "fast"
      gold:
        warnFraction: 1.5
    tenants:
      acme: { tier: pro, overides: {} }
  `);

  it('lists each problem at its own line, in file order', () => {
    const issues = policyIssues(() => parsePolicy(text, 'breakwater.yaml'));
    expect(issues.map(({ line, column, path }) => `${line}:${column} ${path}`)).toEqual([
      '6:7 tiers.free.run.stepCont', // unknown key
      '7:7 tiers.free.run.costUsd', // negative threshold
      '9:7 tiers.free.breaker.cooldownMs', // bad type
      '11:5 tiers.gold.warnFraction', // out of range
      '13:22 tenants.acme.overides', // unknown key in a flow mapping
    ]);
    expect(issues.every((issue) => issue.file === 'breakwater.yaml')).toBe(true);
  });

  it('says what is wrong', () => {
    const messages = policyIssues(() => parsePolicy(text, 'breakwater.yaml')).map((issue) => issue.message);
    expect(messages).toEqual([
      'unknown key (did you mean stepCount?)',
      'must be a positive number',
      'must be a number, got the string "fast"',
      'must be between 0 and 1, both excluded',
      'unknown key (did you mean overrides?)',
    ]);
  });

  it('formats the error message one issue per line', () => {
    const error = (() => {
      try {
        parsePolicy(text, 'breakwater.yaml');
      } catch (caught) {
        return caught as PolicyError;
      }
      throw new Error('no error');
    })();
    expect(error.message.split('\n')[1]).toBe('breakwater.yaml:7:7 tiers.free.run.costUsd: must be a positive number');
    expect(error.message.split('\n')).toHaveLength(5);
  });

  it('reports an unknown tier at the tenant that names it', () => {
    const issues = policyIssues(() =>
      parsePolicy(
        yaml(`
          tenants:
            acme:
              tier: gold
        `),
        'breakwater.yaml',
      ),
    );
    expect(issues).toEqual([
      {
        file: 'breakwater.yaml',
        line: 3,
        column: 5,
        path: 'tenants.acme.tier',
        message: 'unknown tier "gold"; the tiers are: free, pro, enterprise',
      },
    ]);
  });

  it('reports an unknown defaultTier and an unknown extends', () => {
    const issues = policyIssues(() =>
      parsePolicy('defaultTier: basic\ntiers:\n  gold: { extends: silver }\n', 'policy.yaml'),
    );
    expect(issues.map((issue) => `${issue.file}:${issue.line}:${issue.column} ${issue.path}`)).toEqual([
      'policy.yaml:1:1 defaultTier',
      'policy.yaml:3:11 tiers.gold.extends',
    ]);
  });

  it('reports an extends cycle once', () => {
    const issues = policyIssues(() =>
      parsePolicy('tiers:\n  a: { extends: b }\n  b: { extends: a }\n', 'breakwater.yaml'),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 3, path: 'tiers.b.extends', message: 'extends forms a cycle: a → b → a' });
  });

  it('requires every field of a new tier without extends, pointing at the tier', () => {
    const issues = policyIssues(() => parsePolicy('tiers:\n  custom:\n    warnFraction: 0.5\n', 'breakwater.yaml'));
    expect(issues.map((issue) => `${issue.line} ${issue.path}`)).toEqual([
      '2 tiers.custom.run',
      '2 tiers.custom.tenant',
      '2 tiers.custom.breaker',
      '2 tiers.custom.errorRatio',
    ]);
    expect(issues[0]?.message).toMatch(/is required: .*extends/);
  });

  it('checks cooldownMs against maxCooldownMs after merging, for tiers and for tenant overrides', () => {
    const issues = policyIssues(() =>
      parsePolicy(
        yaml(`
          tiers:
            free:
              breaker: { cooldownMs: 700000 }
          tenants:
            acme:
              tier: pro
              overrides:
                breaker:
                  cooldownMs: 400000
        `),
        'breakwater.yaml',
      ),
    );
    expect(issues.map((issue) => `${issue.line}:${issue.column} ${issue.path}: ${issue.message}`)).toEqual([
      '3:16 tiers.free.breaker.cooldownMs: must not exceed maxCooldownMs (700000 > 600000)',
      '9:9 tenants.acme.overrides.breaker.cooldownMs: must not exceed maxCooldownMs (400000 > 300000) (with the overrides laid over tier pro)',
    ]);
  });

  it('checks value rules: whole numbers, ratios, names, finite numbers', () => {
    const issues = policyIssues(() =>
      parsePolicy(
        yaml(`
          tiers:
            free:
              run:
                stepCount: 2.5
                errorRatio: 1.5
                costUsd: .inf
                subAgentDepth: 0
          tenants:
            "acme corp": {}
          prices:
            gpt-4o: { input: -1, output: 1 }
        `),
        'breakwater.yaml',
      ),
    );
    expect(issues.map((issue) => `${issue.line} ${issue.path}: ${issue.message}`)).toEqual([
      '4 tiers.free.run.stepCount: must be a whole number, got 2.5',
      '5 tiers.free.run.errorRatio: must be at most 1 (it is a ratio)',
      '6 tiers.free.run.costUsd: must be a finite number, got Infinity',
      '7 tiers.free.run.subAgentDepth: must be a positive whole number',
      `9 tenants["acme corp"]: is not a valid name: must be 1 to 128 characters, each a letter, a digit, '_', '.', ':', '@' or '-'`,
      '11 prices.gpt-4o.input: must be 0 or more (USD per million tokens)',
    ]);
  });

  it('rejects unknown top-level sections, listing the known ones when no name is close', () => {
    const issues = policyIssues(() => parsePolicy('defaultTier: free\nlimits: {}\n', 'breakwater.yaml'));
    expect(issues).toEqual([
      {
        file: 'breakwater.yaml',
        line: 2,
        column: 1,
        path: 'limits',
        message: 'unknown key; expected one of: defaultTier, prices, runKeys, tiers, tenants, auth, degradation, notifications',
      },
    ]);
  });

  it('reports a document that is not a mapping', () => {
    const issues = policyIssues(() => parsePolicy('- free\n- pro\n', 'breakwater.yaml'));
    expect(issues).toEqual([
      { file: 'breakwater.yaml', line: 1, column: 1, path: '(top level)', message: 'must be a mapping, got a list' },
    ]);
  });
});

describe('parsePolicy: YAML syntax problems', () => {
  it('reports a syntax error with its line', () => {
    const issues = policyIssues(() =>
      parsePolicy('tiers:\n  free:\n    run: { stepCount: 5\n  pro: {}\n', 'breakwater.yaml'),
    );
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]).toMatchObject({ file: 'breakwater.yaml', line: 4 });
  });

  it('reports bad indentation with its line', () => {
    const issues = policyIssues(() => parsePolicy('tiers:\n  free:\n    run: {}\n   pro: {}\n', 'breakwater.yaml'));
    expect(issues[0]).toMatchObject({ line: 4 });
  });

  it('refuses a duplicate key at the second occurrence', () => {
    const issues = policyIssues(() =>
      parsePolicy('tenants:\n  acme: { tier: pro }\n  acme: { tier: free }\n', 'breakwater.yaml'),
    );
    expect(issues).toEqual([
      expect.objectContaining({ line: 3, column: 3, path: 'tenants.acme', message: 'duplicate key (first written on line 2)' }),
    ]);
  });

  it('refuses keys that are lists or mappings', () => {
    const issues = policyIssues(() => parsePolicy('tenants:\n  ? [a, b]\n  : { tier: pro }\n', 'breakwater.yaml'));
    expect(issues[0]).toMatchObject({ line: 2, column: 5, message: 'a key must be a plain name, not a list or a mapping' });
  });

  it('refuses several documents in one file', () => {
    const issues = policyIssues(() => parsePolicy('defaultTier: free\n---\ndefaultTier: pro\n', 'breakwater.yaml'));
    expect(issues[0]).toMatchObject({ line: 2 });
  });

  it('refuses unknown tags rather than reading them as strings', () => {
    const issues = policyIssues(() => parsePolicy('tiers:\n  free:\n    warnFraction: !half 0.5\n', 'breakwater.yaml'));
    expect(issues).toEqual([
      expect.objectContaining({ line: 3, column: 19, path: 'tiers.free.warnFraction', message: 'Unresolved tag: !half' }),
    ]);
  });

  it('refuses values of YAML 1.1 types by their type', () => {
    const issues = policyIssues(() => parsePolicy('defaultTier: !!binary ZnJlZQ==\n', 'breakwater.yaml'));
    expect(issues).toEqual([
      expect.objectContaining({ line: 1, column: 1, path: 'defaultTier', message: expect.stringMatching(/^must be a string, got a (Buffer|Uint8Array)$/) }),
    ]);
  });
});

describe('loadPolicyFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'breakwater-policy-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads and checks a file, naming it in issues', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(path, 'tiers:\n  free:\n    run: { stepCount: -3 }\n');
    const issues = await policyIssuesAsync(() => loadPolicyFile(path));
    expect(issues).toEqual([expect.objectContaining({ file: path, line: 3, column: 12, path: 'tiers.free.run.stepCount' })]);

    await writeFile(path, 'defaultTier: pro\n');
    expect((await loadPolicyFile(path)).defaultTier).toBe('pro');
  });

  it('gives the built-in policy when the default file is absent', async () => {
    expect(await loadPolicyFile(join(dir, 'absent.yaml'), { explicit: false })).toBe(builtinPolicy());
  });

  it('refuses an explicitly named file that is absent', async () => {
    const path = join(dir, 'absent.yaml');
    const issues = await policyIssuesAsync(() => loadPolicyFile(path, { explicit: true }));
    expect(issues).toEqual([{ file: path, line: 0, column: 0, path: '(top level)', message: 'does not exist' }]);
    // a path other than the default counts as explicit
    await expect(loadPolicyFile(path)).rejects.toBeInstanceOf(PolicyError);
  });

  it('refuses a directory and a file that is not UTF-8', async () => {
    await expect(loadPolicyFile(dir)).rejects.toThrow(/not a regular file/);
    const path = join(dir, 'latin1.yaml');
    await writeFile(path, Buffer.from([0x23, 0x20, 0xe9, 0x0a]));
    await expect(loadPolicyFile(path)).rejects.toThrow(/not UTF-8/);
  });
});
