import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { CHANGE_BURST } from '../../src/policy/change-rate-limit.js';
import { gql } from '../helpers/graphql.js';
import { capturedLog, counterValue, refusalLines, startWithPolicy } from '../helpers/service.js';

// Every run-time change is persisted and replayed at each reload: a tenant may not make them in a loop.

let service: Service;
const { logger, lines } = capturedLog();

beforeAll(async () => {
  service = await startWithPolicy('tiers:\n  free:\n    run: { toolCallsPerMinute: 100 }\n', logger);
});

afterAll(async () => {
  await service?.stop();
});

const setSteps = (tenantId: string, steps: number) =>
  gql(service.graphqlUrl, `mutation { setTenantPolicy(tenantId: "${tenantId}", policy: { run: { stepCount: ${steps} } }) { tier } }`);

describe('run-time policy changes are rate-limited per tenant', () => {
  it('refuses a burst past the limit with RATE_LIMITED and a retry time, and leaves other tenants alone', async () => {
    const before = service.core.runtimePolicy.changes().length;
    const answers = await Promise.all(Array.from({ length: CHANGE_BURST + 20 }, (_, i) => setSteps('rl-a', 10 + i)));
    const limited = answers.filter((a) => a.errors?.[0]?.extensions?.code === 'RATE_LIMITED');
    const accepted = answers.filter((a) => a.errors === undefined);
    expect(accepted.length + limited.length).toBe(answers.length);
    expect(accepted.length).toBeGreaterThanOrEqual(CHANGE_BURST);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    expect(limited[0]?.errors?.[0]?.extensions?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // only the accepted changes are kept, and replayed at the next reload
    expect(service.core.runtimePolicy.changes().length - before).toBe(accepted.length);

    expect((await setSteps('rl-b', 5)).errors).toBeUndefined();
    expect(await counterValue(service, 'breakwater_policy_changes_refused_total')).toBe(limited.length);
    expect(refusalLines(lines, 'policy_change_rate')).toEqual([expect.objectContaining({ tenantId: 'rl-a', changes: 1, actor: 'anonymous' })]);
  });

  it("applies another tenant's change next, not after a tenant's whole burst", async () => {
    const policy = service.core.runtimePolicy;
    let flooded = 0;
    const burst = Array.from({ length: 40 }, (_, i) => policy.change({ kind: 'setTenantPolicy', tenantId: 'rl-c', patch: { run: { stepCount: 100 + i } } }, 'flooder').then((o) => (flooded++, o)));
    const other = await policy.change({ kind: 'setTenantPolicy', tenantId: 'rl-d', patch: { run: { stepCount: 7 } } }, 'operator');
    expect(other.ok).toBe(true);
    // one of the burst may be under way when the other tenant's change arrives, and one more goes before it
    expect(flooded).toBeLessThanOrEqual(2);
    expect((await Promise.all(burst)).every((o) => o.ok)).toBe(true);
    expect(service.core.policy.forTenant('rl-c').run.stepCount).toBe(139);
  });
});
