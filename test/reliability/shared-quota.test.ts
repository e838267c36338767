// The shared-quota scenario (bench/shared-quota.ts) against a real Breakwater: eight steady tenants
// and a runaway share one provider token bucket, every agent on the SDK with its defaults. The
// runaway's run crosses tokenVelocity10s, a rate only Breakwater judges, so the SDK's HALT must come
// from the server before the runaway's next step: its spans must leave as soon as its calls end.
// On the SDK before it sent a run's spans as they end (BatchSpanProcessor, 200 ms) the runaway made
// 1-10 calls past its crossing ([10, 5, 3, 2, 1] in 5 runs). It can still miss when every export slot awaits a slow answer
// (docs/benchmarks.md, "Shared quota"): that is the receiver's answer latency, issue 21 point 3.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { runSharedQuota, SHARED_QUOTA_POLICY } from '../../bench/shared-quota.js';
import { startWithPolicy } from '../helpers/service.js';

let service: Service;

beforeAll(async () => {
  service = await startWithPolicy(SHARED_QUOTA_POLICY);
});

afterAll(async () => {
  await service?.stop();
});

describe('shared quota', () => {
  // The target, 0 steps in every run, holds on a quiet machine (5 of 5) but not yet on a loaded one
  // (a late answer holds the crossing span back): the bench reports it; this bounds it.
  it('halts the runaway within two steps of its crossing, and no steady tenant sees a 429', async () => {
    const result = await runSharedQuota(service, { kind: 'sdk' }, 5);

    expect(result.runs).toHaveLength(5);
    for (const run of result.runs) expect(run.metric).toBe('tokenVelocity10s');
    const stepsAfter = result.runs.map((r) => r.stepsAfter);
    console.log(`shared quota: steps after the crossing per run ${JSON.stringify(stepsAfter)}`);
    expect(Math.max(...stepsAfter), `steps after the crossing: ${JSON.stringify(stepsAfter)}`).toBeLessThanOrEqual(2);
    expect(result.steadyCalls).toBeGreaterThan(0);
    expect(result.steady429).toBe(0);
    expect(result.steadyBeyondWarn).toBe(0);
  }, 40_000);
});
