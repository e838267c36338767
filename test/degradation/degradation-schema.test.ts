import { describe, expect, it } from 'vitest';
import {
  defaultDegradationSection,
  degradationSectionSchema,
  taskPolicy,
  tenantDegradationPolicy,
  withTenantDegradation,
} from '../../src/degradation/degradation-schema.js';
import { parse as parseYaml } from 'yaml';
import { describeZodIssues } from '../../src/policy/describe-issue.js';

const LADDER = [
  { tier: 0, provider: 'openai', model: 'gpt-4o', region: 'us' },
  { tier: 1, provider: 'azure.ai.openai', model: 'gpt-4o', endpoint: 'eu.example.azure.com', region: 'eu' },
  { tier: 2, provider: 'vllm', model: 'llama-3.1-70b' },
  { tier: 3, provider: 'openai', model: 'gpt-4o-mini', region: 'us' },
];

function issues(raw: unknown): string[] {
  const result = degradationSectionSchema.safeParse(raw);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('degradation section', () => {
  it('an empty section is a working policy: no ladder, nobody is switched', () => {
    const section = defaultDegradationSection();
    expect(section.taskAttribute).toBe('breakwater.task');
    expect(section.providerHealth).toMatchObject({ minimumCalls: 20, failureRateThreshold: 0.5, sharedMinTenants: 2 });
    expect(section.quotaTelemetry).toEqual({ warnAt: 0.7, criticalAt: 0.9, staleAfterMs: 60_000 });
    const policy = tenantDegradationPolicy(section, 'anyone');
    expect(policy).toMatchObject({ enabled: true, tiers: [], permittedTiers: [0, 1, 2, 3, 4], notify: true });
    expect(policy.consent).toEqual({ required: false, fromTier: 1, timeoutMs: 900_000 });
    expect(policy.recovery).toEqual({ windowMs: 60_000, probeCalls: 3, windowMultiplier: 2, maxWindowMs: 900_000 });
  });

  it('reads the YAML shape documented for breakwater.yaml, tenants laid over defaults', () => {
    const yaml = `
taskAttribute: breakwater.task
providerHealth: { minimumCalls: 10, failureRateThreshold: 0.4 }
defaults:
  tiers:
    - { tier: 0, provider: openai, model: gpt-4o, region: us }
    - { tier: 1, provider: azure.ai.openai, model: gpt-4o, endpoint: eu.example.azure.com, region: eu }
    - { tier: 2, provider: vllm, model: llama-3.1-70b }
    - { tier: 3, provider: openai, model: gpt-4o-mini, region: us }
  triggers: { latencyP95Ms: 8000, costPerMinuteUsd: 5 }
  quota: { requestsPerMinute: 600, tokensPerMinute: 200000 }
  tasks:
    code_generation: { permittedTiers: [0, 1, 4] }
tenants:
  hospital:
    permittedTiers: [0, 1, 4]
    consent: { required: true }
    residency: { excludedRegions: [us] }
    tiers:
      - { tier: 0, provider: azure.ai.openai, model: gpt-4o, region: eu }
      - { tier: 2, provider: vllm, model: llama-3.1-70b, region: eu }
  marketing:
    triggers: { latencyP95Ms: null }
    quota: { tokensPerMinute: 50000 }
`;
    const section = degradationSectionSchema.parse(parseYaml(yaml));
    expect(section.providerHealth.minimumCalls).toBe(10);
    const hospital = tenantDegradationPolicy(section, 'hospital');
    expect(hospital.tiers.map((t) => t.tier)).toEqual([0, 2]);
    expect(hospital.consent).toEqual({ required: true, fromTier: 1, timeoutMs: 900_000 });
    expect(hospital.triggers.latencyP95Ms).toBe(8000);
    const marketing = tenantDegradationPolicy(section, 'marketing');
    expect(marketing.triggers.latencyP95Ms).toBeUndefined();
    expect(marketing.quota).toEqual({ requestsPerMinute: 600, tokensPerMinute: 50_000 });
    expect(marketing.tiers).toHaveLength(4);
    // task overrides replace the ladder fields for runs of that task only
    expect(taskPolicy(marketing, 'code_generation')).toMatchObject({ task: 'code_generation', permittedTiers: [0, 1, 4] });
    expect(taskPolicy(marketing, 'summarize')).toMatchObject({ task: '', permittedTiers: [0, 1, 2, 3, 4] });
  });

  it('caches a tenant policy per section object', () => {
    const section = degradationSectionSchema.parse({ tenants: { a: { notify: false } } });
    expect(tenantDegradationPolicy(section, 'a')).toBe(tenantDegradationPolicy(section, 'a'));
    expect(tenantDegradationPolicy(section, 'a').notify).toBe(false);
    expect(tenantDegradationPolicy(section, 'b').notify).toBe(true);
  });

  it('refuses ladders that cannot work, with the key path', () => {
    expect(issues({ defaults: { tiers: [LADDER[1]] } })).toEqual(['defaults.tiers.0.tier: the first entry must be tier 0 (the primary)']);
    expect(issues({ defaults: { tiers: [LADDER[0], LADDER[3], LADDER[2]] } })).toEqual(['defaults.tiers.2.tier: tiers must be listed best first (2 after 3)']);
    expect(issues({ defaults: { tiers: [LADDER[0], { tier: 4, provider: 'x', model: 'y' }] } })[0]).toMatch(
      /^defaults\.tiers\.1\.tier: must be 0 to 3 \(tier 4, suspend, needs no entry/,
    );
    expect(issues({ defaults: { permittedTiers: [1, 2] } })).toEqual(['defaults.permittedTiers: must include 0 (the primary)']);
    expect(issues({ defaults: { tiers: LADDER, residency: { excludedRegions: ['us'] } } })).toEqual([
      'defaults.tiers.0: the primary (openai/gpt-4o) is excluded by the residency rules',
    ]);
    expect(issues({ tenants: { eu: { tiers: LADDER, residency: { excludedProviders: ['openai'] } } } })).toEqual([
      'tenants.eu.tiers.0: the primary (openai/gpt-4o) is excluded by the residency rules',
    ]);
    expect(issues({ defaults: { tiers: LADDER, tasks: { code: { tiers: [LADDER[2]] } } } })).toEqual([
      'defaults.tasks.code.tiers.0.tier: the first entry must be tier 0 (the primary)',
    ]);
    expect(issues({ defaults: { recovery: { windowMs: 10_000, maxWindowMs: 5_000 } } })).toEqual([
      'defaults.recovery.windowMs: must not exceed maxWindowMs (10000 > 5000)',
    ]);
    expect(issues({ defaults: { trigers: {} } })).toHaveLength(1);
    expect(issues({ tenants: { 'bad id!': {} } })).toHaveLength(1);
    expect(issues({ providerHealth: { minimumCalls: 200 } })).toEqual(['providerHealth.minimumCalls: must not exceed slidingWindowSize (200 > 100)']);
  });

  it('names misspelt keys the way the policy loader reports them', () => {
    const result = degradationSectionSchema.safeParse({ defaults: { trigers: {} }, tenants: { acme: { consent: { requierd: true } } } });
    expect(result.success).toBe(false);
    expect(describeZodIssues(result.error!.issues, degradationSectionSchema)).toEqual([
      { path: ['defaults', 'trigers'], message: 'unknown key (did you mean triggers?)' },
      { path: ['tenants', 'acme', 'consent', 'requierd'], message: 'unknown key (did you mean required?)' },
    ]);
  });

  it('builds the candidate section of a run-time change, checked like the file', () => {
    const section = degradationSectionSchema.parse({ defaults: { tiers: LADDER }, tenants: { a: { notify: false }, b: {} } });
    const changed = degradationSectionSchema.parse(withTenantDegradation(section, 'a', { consent: { required: true } }));
    expect(tenantDegradationPolicy(changed, 'a')).toMatchObject({ notify: true, consent: { required: true } });
    expect(Object.keys(degradationSectionSchema.parse(withTenantDegradation(section, 'b', null)).tenants)).toEqual(['a']);
    expect(degradationSectionSchema.safeParse(withTenantDegradation(section, 'a', { permittedTiers: [2] })).success).toBe(false);
  });
});
