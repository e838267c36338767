// The attributes one request may have stored, counted as storage holds them: a resource's on each
// of its spans' rows. Spans past the budget are rejected with a reason, not stored.
import { describe, expect, it } from 'vitest';
import { normalizeRequest } from '../../src/normalize/normalize.js';
import { attrs, filler, modelRequest, modelSpan } from '../helpers/otlp-model.js';

const BUDGET = { maxAttributes: 1_000_000, maxBytes: 64 * 1024 * 1024 };
const tenant = attrs({ 'tenant.id': 'hostile' });

describe('the per-request attribute budget', () => {
  it('rejects the spans past it when one large resource would be stored on every row', () => {
    // 100 attributes of 1 KB (about 100 KB) over 2,000 spans: 200 MB stored from a body of about 200 KB.
    const resource = [...tenant, ...filler(100, 'k8s', 'v'.repeat(1_000))];
    const spans = Array.from({ length: 2_000 }, () => modelSpan([]));
    const result = normalizeRequest(modelRequest(resource, spans), { requireTenant: true, attributeBudget: BUDGET });
    const perSpan = resource.reduce((n, { key, value }) => n + key.length + (value as string).length, 0);
    expect(result.spans).toHaveLength(Math.floor(BUDGET.maxBytes / perSpan));
    expect(result.rejected).toBe(2_000 - result.spans.length);
    expect(result.overBudget).toBe(result.rejected);
    expect(result.errorMessage).toMatch(/span\(s\) rejected: over the request's attribute limit \(1000000 attributes or 67108864 bytes of them, a resource's counted once per span under it\)/);
  });

  it('counts attribute entries the same way: 128 resource attributes on 10,000 spans are over a million', () => {
    const resource = [...tenant, ...filler(127, 'r')];
    const spans = Array.from({ length: 10_000 }, () => modelSpan(attrs({ 'agent.run.id': 'r' })));
    const result = normalizeRequest(modelRequest(resource, spans), { requireTenant: true, attributeBudget: BUDGET });
    expect(result.spans).toHaveLength(Math.floor(1_000_000 / 129));
    expect(result.overBudget).toBe(10_000 - Math.floor(1_000_000 / 129));
  });

  it('lets an ordinary batch through whole', () => {
    const resource = [...tenant, ...filler(20, 'r')];
    const spans = Array.from({ length: 8_192 }, () => modelSpan(filler(30, 'gen_ai', 'y'.repeat(40))));
    const result = normalizeRequest(modelRequest(resource, spans), { requireTenant: true, attributeBudget: BUDGET });
    expect(result.rejected).toBe(0);
    expect(result.spans).toHaveLength(8_192);
  });
});
