// Issue 23's run-id cardinality attack over real HTTP: tenant A floods distinct run ids; past its
// own bound the spans of its new runs are refused in partial_success before they are acknowledged,
// its existing runs keep being accepted, and tenant B's halted run stays HALT with B's spans
// accepted throughout. The refusal is counted in /metrics and logged, naming the tenant. Run
// breakers an operator creates are bounded per tenant the same way.
import { Writable } from 'node:stream';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/app/service.js';
import { ExportTraceServiceResponseType } from '../../src/codecs/otlp-proto-schema.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { gql, subscribeSse } from '../helpers/graphql.js';
import { recordingTracer } from '../helpers/otel.js';
import { tempDataDir, testConfig } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

const BOUND = 50;
let service: Service;
const logged: { msg: string; tenantId?: string; reason?: string; runs?: number }[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logged.push(JSON.parse(line) as (typeof logged)[number]);
      done();
    },
  });
  service = await startService(testConfig({ dataDir: tempDataDir(), maxRunsPerTenant: BOUND }), pino({ level: 'warn' }, sink));
});

afterAll(async () => {
  await service?.stop();
});

/** One request of `runs` distinct new run ids, one tool call each. */
function floodRequest(tenant: string, round: number, runs: number): Uint8Array {
  const { tracer, finished } = recordingTracer({ 'tenant.id': tenant });
  for (let r = 0; r < runs; r++) {
    tracer.startSpan('tool', { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search', 'agent.run.id': `flood-${round}-${r}` } }).end();
  }
  return ProtobufTraceSerializer.serializeRequest(finished())!;
}

async function partialSuccess(res: Response): Promise<{ rejected: number; errorMessage: string }> {
  expect(res.status).toBe(200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.byteLength === 0) return { rejected: 0, errorMessage: '' };
  const { partialSuccess } = ExportTraceServiceResponseType.decode(bytes) as unknown as { partialSuccess?: { rejectedSpans: { toString(): string }; errorMessage: string } };
  return { rejected: Number(String(partialSuccess?.rejectedSpans ?? 0)), errorMessage: partialSuccess?.errorMessage ?? '' };
}

async function stored(tenant: string): Promise<number> {
  const rows = await queryRows<{ n: string }>(service.store.client, `SELECT toString(count()) AS n FROM spans WHERE TenantId = {t:String}`, { t: tenant });
  return Number(rows[0]?.n);
}

const DECISIONS = `subscription($t: String!, $r: String) { decisions(tenantId: $t, runId: $r) { runId action state } }`;
const RUN = `query($t: String!, $r: String!) { run(tenantId: $t, runId: $r) { metrics { stepCount } decision { action state } } }`;

describe('per-tenant bounds against a hostile tenant', () => {
  it('refuses a tenant flooding distinct run ids past its own bound in partial_success; it cannot lift another tenant’s HALT', async () => {
    // B: a runaway halted (the free tier halts at 30 tool calls a minute) and a steady run.
    const watch = subscribeSse<{ decisions: { runId: string; action: string; state: string } }>(service.graphqlUrl, DECISIONS, { t: 'tenant-b', r: 'runaway' });
    expect(await partialSuccess(await postSpans(service.otlpUrl, runSteps('tenant-b', 'runaway', Array.from({ length: 31 }, () => ({ tool: 'search' })))))).toEqual({ rejected: 0, errorMessage: '' });
    await watch.waitFor((m) => m.decisions.action === 'HALT');
    expect((await partialSuccess(await postSpans(service.otlpUrl, runSteps('tenant-b', 'steady', [{ tool: 'search' }])))).rejected).toBe(0);

    // A: 10 requests of 100 new run ids each; only BOUND runs get room, all in the first request.
    const outcomes = [];
    for (let round = 0; round < 10; round++) outcomes.push(await partialSuccess(await postSpans(service.otlpUrl, floodRequest('tenant-a', round, 100))));
    expect(outcomes.map((o) => o.rejected)).toEqual([100 - BOUND, 100, 100, 100, 100, 100, 100, 100, 100, 100]);
    expect(outcomes[0]!.errorMessage).toMatch(/50 spans of 50 new runs: tenant "tenant-a" holds as many runs as it may \(--max-runs-per-tenant\)/);

    // A's runs already held are still accepted, in a request mixed with new ones (those refused).
    const mixed = Buffer.concat([runSteps('tenant-a', 'flood-0-0', [{ tool: 'search' }]), floodRequest('tenant-a', 99, 3)]);
    expect((await partialSuccess(await postSpans(service.otlpUrl, mixed))).rejected).toBe(3);
    // Refused spans are not acknowledged, so not stored: BOUND flood spans and the one to flood-0-0.
    expect(await stored('tenant-a')).toBe(BOUND + 1);

    // B keeps its windows and its HALT, and its spans are accepted during the flood.
    expect(await partialSuccess(await postSpans(service.otlpUrl, runSteps('tenant-b', 'steady', [{ tool: 'search' }])))).toEqual({ rejected: 0, errorMessage: '' });
    expect(await partialSuccess(await postSpans(service.otlpUrl, runSteps('tenant-b', 'new-run', [{ tool: 'search' }])))).toEqual({ rejected: 0, errorMessage: '' });
    const runaway = await gql<{ run: { metrics: { stepCount: number } | null; decision: { action: string; state: string } } }>(service.graphqlUrl, RUN, { t: 'tenant-b', r: 'runaway' });
    expect(runaway.data!.run).toEqual({ metrics: { stepCount: 31 }, decision: { action: 'HALT', state: 'OPEN' } });
    const steady = await gql<{ run: { metrics: { stepCount: number } | null } }>(service.graphqlUrl, RUN, { t: 'tenant-b', r: 'steady' });
    expect(steady.data!.run.metrics).toEqual({ stepCount: 2 });
    expect(watch.messages.map((m) => m.decisions.action)).not.toContain('ALLOW');
    watch.close();

    // Counted by reason, and logged once (rate-limited) naming the tenant.
    const metrics = await (await fetch(`${service.otlpUrl}/metrics`)).text();
    const refusedSpans = 100 - BOUND + 9 * 100 + 3;
    expect(metrics).toContain(`breakwater_spans_rejected_total{reason="tenant_runs"} ${refusedSpans}`);
    expect(metrics).toContain(`breakwater_runs_refused_total{reason="tenant_runs"} ${refusedSpans}`);
    const lines = logged.filter((l) => l.reason === 'tenant_runs');
    expect(lines).toEqual([expect.objectContaining({ tenantId: 'tenant-a', runs: 100 - BOUND, msg: expect.stringMatching(/new runs refused/) })]);
  });

  it('refuses an operator a run breaker past the tenant’s bound over GraphQL, and no other tenant', async () => {
    const FORCE = 'mutation($t: String!, $r: String) { forceOpenBreaker(tenantId: $t, runId: $r, reason: "incident") { state } }';
    for (let r = 0; r < BOUND; r++) expect((await gql(service.graphqlUrl, FORCE, { t: 'tenant-c', r: `forced-${r}` })).errors).toBeUndefined();
    const refused = await gql(service.graphqlUrl, FORCE, { t: 'tenant-c', r: 'one-more' });
    expect(refused.errors?.[0]).toMatchObject({ message: expect.stringMatching(/tenant "tenant-c" holds 50 run breakers/), extensions: { code: 'LIMIT_EXCEEDED' } });
    expect((await gql<{ forceOpenBreaker: { state: string } }>(service.graphqlUrl, FORCE, { t: 'tenant-d', r: 'one-more' })).data?.forceOpenBreaker).toEqual({ state: 'FORCED_OPEN' });
  });
});
