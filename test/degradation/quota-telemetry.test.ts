import { describe, expect, it } from 'vitest';
import type { RateLimitClass } from '../../src/degradation/classify.js';
import { quotaTelemetrySchema } from '../../src/degradation/degradation-schema.js';
import { QuotaTelemetry, type QuotaLevelChange } from '../../src/degradation/quota-telemetry.js';

const RATE: RateLimitClass = { kind: 'request_rate', billing: false, resetMs: -1, evidence: 'HTTP 429' };

function telemetry() {
  let now = 1_000_000;
  const changes: QuotaLevelChange[] = [];
  const quotas = new QuotaTelemetry(() => now, () => quotaTelemetrySchema.parse({}), (change) => changes.push(change));
  return { quotas, changes, advance: (ms: number) => (now += ms), now: () => now };
}

describe('Quota telemetry: a call that succeeds after a 429', () => {
  it('ends the EXHAUSTED level of the key, for every tenant and for the tenant that made the call', () => {
    const { quotas, changes, advance, now } = telemetry();
    quotas.rateLimited('acme', 'key-1', 'openai', RATE, -1);
    expect(quotas.keys().map((q) => q.level)).toEqual(['EXHAUSTED']);
    expect(quotas.tenantKeys('acme').map((q) => q.level)).toEqual(['EXHAUSTED']);
    const limitedAt = now();
    advance(10);
    quotas.quotaBack('acme', 'key-1', limitedAt + 5);
    expect(quotas.keys().map((q) => q.level)).toEqual(['OK']);
    expect(quotas.tenantKeys('acme').map((q) => q.level)).toEqual(['OK']);
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['OK->EXHAUSTED', 'EXHAUSTED->OK']);
  });

  it('says nothing when the call started before the 429, or the key has no 429 on record', () => {
    const { quotas, changes, advance, now } = telemetry();
    quotas.rateLimited('acme', 'key-1', 'openai', RATE, -1);
    const limitedAt = now();
    advance(10);
    quotas.quotaBack('acme', 'key-1', limitedAt - 1);
    quotas.quotaBack('acme', 'key-2', limitedAt + 5);
    quotas.quotaBack('globex', 'key-1', limitedAt - 1);
    expect(quotas.keys().map((q) => q.level)).toEqual(['EXHAUSTED']);
    expect(quotas.tenantKeys('acme').map((q) => q.level)).toEqual(['EXHAUSTED']);
    expect(quotas.tenantKeys('globex')).toEqual([]);
    expect(changes).toHaveLength(1);
  });
});
