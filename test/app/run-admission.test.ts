// Run admission ahead of acknowledgement: spans of new runs without room are refused, those of runs
// held are admitted, and a request's new runs cannot take the room of its own runs already held.
import { describe, expect, it } from 'vitest';
import { RunAdmission } from '../../src/app/run-admission.js';
import { makeStore, span } from '../windows/helpers.js';

describe('RunAdmission', () => {
  it("refuses only the spans of new runs past the tenant's bound, reporting them once per tenant", () => {
    const { store } = makeStore({ maxRunsPerTenant: 2 });
    const reports: unknown[] = [];
    const admission = new RunAdmission(store, (...args) => reports.push(args));
    const spans = [span({ runId: 'a' }), span({ runId: 'b' }), span({ runId: 'c' }), span({ runId: 'a' }), span({ runId: 'c' }), span({ runId: 'd' }), span({ tenantId: 't2', runId: 'a' })];
    const outcome = admission.admit(spans);
    expect(outcome.spans.map((s) => `${s.tenantId}/${s.runId}`)).toEqual(['t1/a', 't1/b', 't1/a', 't2/a']);
    expect([...outcome.refused]).toEqual([['tenant_runs', 3]]);
    expect(outcome.errorMessage).toMatch(/^3 spans of 2 new runs: tenant "t1" holds as many runs as it may/);
    expect(reports).toEqual([['t1', 'tenant_runs', 2, 3]]);
    expect(admission.admit([span({ runId: 'b' })])).toEqual({ spans: [expect.objectContaining({ runId: 'b' })], refused: new Map(), errorMessage: '' });
  });

  it("keeps a request's runs already held when its new runs need room", () => {
    const { store, clock } = makeStore({ maxRunsPerTenant: 2 });
    store.record(span({ runId: 'old', operation: 'execute_tool' }));
    store.record(span({ runId: 'older-seen', operation: 'execute_tool' }));
    clock.advance(61_000);
    store.record(span({ runId: 'older-seen', operation: 'execute_tool' }));
    clock.advance(61_000);
    // Both quiet now; 'old' is the least recently used, but this request carries it after its new run.
    const outcome = new RunAdmission(store).admit([span({ runId: 'new' }), span({ runId: 'old' })]);
    expect(outcome.refused.size).toBe(0);
    expect(store.activeRuns('t1').sort()).toEqual(['new', 'old']);
    expect(store.runMetrics('t1', 'old')!.stepCount).toBe(1);
  });
});
