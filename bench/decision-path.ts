// Decision-path figures, measured in the process that runs Breakwater:
// - decision latency: from an OTLP request's receipt to the decisions for its spans published
//   (an observer placed after the breaker and degradation engines records performance.now() -
//   receivedAt for every accepted batch);
// - the cost of the SDK's `checkpoint()` (halting-agents.ts measures the time from a
//   threshold-crossing batch's receipt to `checkpoint()` seeing HALT);
// - a tenant's per-minute timeseries over a day through GraphQL, on N stored spans.
import { PerformanceObserver } from 'node:perf_hooks';
import { Breakwater } from '../src/sdk/index.js';
import { silentLogger } from '../src/sdk/logger.js';
import type { Service } from '../src/app/service.js';
import { gql } from '../test/helpers/graphql.js';

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Starts recording decision latency (ms) for every batch, or only for batches of tenants that
 * `tenants` accepts; call the returned function to stop.
 */
export function recordDecisionLatency(service: Service, tenants: (tenantId: string) => boolean = () => true): { samples: number[]; stop(): void } {
  const samples: number[] = [];
  let on = true;
  service.pipeline.addObserver({
    observe(spans, receivedAt) {
      if (on && spans.length > 0 && tenants(spans[0]!.tenantId)) samples.push(performance.now() - receivedAt);
    },
  });
  return { samples, stop: () => (on = false) };
}

/** Records the main thread's GC pauses (ms) until stopped: part of what a decision may wait for. */
export function recordGcPauses(): { pauses: number[]; stop(): void } {
  const pauses: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push(entry.duration);
  });
  observer.observe({ entryTypes: ['gc'] });
  return { pauses, stop: () => observer.disconnect() };
}

/** performance.now() at the receipt of the first accepted batch of a tenant that `tenants` accepts: a load has reached the service. */
export function firstBatchOf(service: Service, tenants: (tenantId: string) => boolean): Promise<number> {
  return new Promise((resolve) => {
    let waiting = true;
    service.pipeline.addObserver({
      observe(spans, receivedAt) {
        if (waiting && spans.length > 0 && tenants(spans[0]!.tenantId)) {
          waiting = false;
          resolve(receivedAt);
        }
      },
    });
  });
}

/** µs a `checkpoint()` call costs in a run that is allowed (the decision cached, no I/O). */
export async function checkpointCost(service: Service, tenant: string): Promise<number> {
  const bw = await Breakwater.start({
    tenantId: tenant,
    otlpUrl: service.otlpUrl,
    graphqlUrl: service.graphqlUrl,
    global: false,
    logger: silentLogger,
  });
  const calls = 100_000;
  let us = 0;
  try {
    await bw.run('checkpoint-cost', async () => {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) await bw.checkpoint();
      us = ((performance.now() - t0) * 1000) / calls;
    });
  } finally {
    await bw.shutdown();
  }
  return us;
}

/** Seeds `spans` spans for one tenant spread over the last day, straight into ClickHouse. */
export async function seedHistory(service: Service, tenant: string, spans: number): Promise<void> {
  const chunk = 2_000_000;
  for (let start = 0; start < spans; start += chunk) {
    const n = Math.min(chunk, spans - start);
    await service.store.client.command({
      query: `INSERT INTO spans (TenantId, RunId, TraceId, SpanId, StartTime, EndTime, DurationNs, Operation, Provider, RequestModel, InputTokens, OutputTokens)
              SELECT {tenant:String}, concat('run-', toString(number % 5000)), hex(number), hex(number + {offset:UInt64}),
                     now64(9) - toIntervalMillisecond(number * 86400000 / {total:UInt64}) AS t, t, 1000000,
                     if(number % 3 = 0, 'execute_tool', 'chat'), 'openai', 'gpt-4o-mini', 100, 20
              FROM numbers({offset:UInt64}, {n:UInt64})`,
      query_params: { tenant, offset: start, n, total: spans },
    });
  }
}

/** Median ms of a day's per-minute TOKENS timeseries for `tenant` through GraphQL. */
export async function historyQuery(service: Service, tenant: string, repeats: number): Promise<number[]> {
  const to = new Date();
  const from = new Date(to.getTime() - 86_400_000);
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const res = await gql<{ tenant: { timeseries: { value: number }[] } }>(
      service.graphqlUrl,
      'query($t: String!, $f: DateTime!, $to: DateTime!) { tenant(id: $t) { timeseries(metric: TOKENS, from: $f, to: $to, stepSeconds: 60) { time value } } }',
      { t: tenant, f: from.toISOString(), to: to.toISOString() },
    );
    times.push(performance.now() - t0);
    if (res.errors || !res.data || res.data.tenant.timeseries.length < 1000) throw new Error(`history query failed: ${JSON.stringify(res).slice(0, 300)}`);
  }
  return times;
}
