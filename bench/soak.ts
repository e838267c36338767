// `npm run soak -- --minutes N`: mixed load for N minutes against an in-process Breakwater on the
// embedded store (ingest from many tenants incl. one runaway, GraphQL queries, decision subscriptions
// over SSE, run-time policy changes), sampling RSS, heap and latencies every 10 s. Exits non-zero if
// memory keeps growing after warm-up (the last third's RSS median more than 15 % over the middle
// third's) or if any acknowledged span is missing afterwards.
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config.js';
import { createLogger } from '../src/app/log.js';
import { startService } from '../src/app/service.js';
import { queryRows } from '../src/storage/clickhouse.js';
import { gql, subscribeSse } from '../test/helpers/graphql.js';
import { postSpans, runSteps } from '../test/helpers/spans.js';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '1' } }, strict: true });
const minutes = Number(values.minutes);
if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) {
  console.error('--minutes must be a number of minutes between 0 and 1440');
  process.exit(2);
}

const TENANTS = 40;
const dataDir = mkdtempSync(join(tmpdir(), 'bw-soak-'));
const config = loadConfig(['--otlp-port', '0', '--graphql-port', '0', '--gateway-port', '0', '--log-level', 'warn', '--data-dir', dataDir], {});
const service = await startService(config, createLogger(config.logLevel));
const url = service.graphqlUrl;

interface Sample {
  at: number;
  rssMb: number;
  heapMb: number;
  spansAcked: number;
  ingestP50: number;
  ingestP99: number;
  queryP50: number;
  queryP99: number;
  decisions: number;
}

const ingestMs: number[] = [];
const queryMs: number[] = [];
let acked = 0;
let decisionsSeen = 0;
let running = true;
const started = Date.now();
const deadline = started + minutes * 60_000;

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function ingestLoop(worker: number): Promise<void> {
  for (let n = 0; running; n++) {
    const tenant = `soak-${(worker * 7 + n) % TENANTS}`;
    // Runs rotate so idle ones age out of the windows, as real runs end.
    const run = `${tenant}-run-${Math.floor(n / 50)}`;
    const runaway = tenant === 'soak-0';
    const steps = runaway ? Array.from({ length: 40 }, () => ({ tool: 'loop' })) : [{ model: 'gpt-4o-mini' }, { tool: 'search' }, {}, { tool: 'fetch' }];
    const t0 = performance.now();
    const res = await postSpans(service.otlpUrl, runSteps(tenant, run, steps));
    ingestMs.push(performance.now() - t0);
    if (res.status === 200) acked += steps.length;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function queryLoop(): Promise<void> {
  const queries = [
    '{ tenants(first: 20) { edges { node { id metrics { tokenVelocity60s toolCallsPerMinute } decision { action } } } } }',
    `{ tenant(id: "soak-3") { activeRuns { runId } timeseries(metric: SPANS, from: "${new Date(started - 60_000).toISOString()}", to: "${new Date(deadline + 60_000).toISOString()}") { value } } }`,
    '{ decision(tenantId: "soak-0") { action reason } }',
  ];
  for (let n = 0; running; n++) {
    const t0 = performance.now();
    await gql(url, queries[n % queries.length]!);
    queryMs.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function policyLoop(): Promise<void> {
  for (let n = 0; running; n++) {
    await gql(url, `mutation { setTenantPolicy(tenantId: "soak-${n % TENANTS}", policy: { run: { stepCount: ${1000 + n} } }) { tier } }`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const subscriptions = Array.from({ length: 10 }, (_, i) => subscribeSse<unknown>(url, `subscription { decisions(tenantId: "soak-${i}") { action } }`, {}));
const samples: Sample[] = [];
const sampler = setInterval(() => {
  decisionsSeen = subscriptions.reduce((n, s) => n + s.messages.length, 0);
  const memory = process.memoryUsage();
  const sample: Sample = {
    at: Math.round((Date.now() - started) / 1000),
    rssMb: Math.round(memory.rss / 1e6),
    heapMb: Math.round(memory.heapUsed / 1e6),
    spansAcked: acked,
    ingestP50: Math.round(percentile(ingestMs, 50) * 10) / 10,
    ingestP99: Math.round(percentile(ingestMs, 99) * 10) / 10,
    queryP50: Math.round(percentile(queryMs, 50) * 10) / 10,
    queryP99: Math.round(percentile(queryMs, 99) * 10) / 10,
    decisions: decisionsSeen,
  };
  ingestMs.length = 0;
  queryMs.length = 0;
  samples.push(sample);
  console.log(JSON.stringify(sample));
}, 10_000);

const loops = [...Array.from({ length: 4 }, (_, w) => ingestLoop(w)), queryLoop(), policyLoop()];
await new Promise((r) => setTimeout(r, deadline - Date.now()));
running = false;
await Promise.all(loops);
clearInterval(sampler);
for (const s of subscriptions) s.close();

const rows = await queryRows<{ n: string }>(service.store.client, "SELECT toString(count()) AS n FROM spans WHERE TenantId LIKE 'soak-%'");
const stored = Number(rows[0]?.n);
await service.stop();

console.log(`\nsoak: ${minutes} min on ${cpus().length} cores; ${acked} spans acknowledged, ${stored} stored`);
console.log('| t (s) | RSS MB | heap MB | spans acked | ingest p50/p99 ms | query p50/p99 ms | decisions seen |');
console.log('|---|---|---|---|---|---|---|');
for (const s of samples) console.log(`| ${s.at} | ${s.rssMb} | ${s.heapMb} | ${s.spansAcked} | ${s.ingestP50} / ${s.ingestP99} | ${s.queryP50} / ${s.queryP99} | ${s.decisions} |`);

let failed = false;
if (stored < acked) {
  console.error(`FAIL: ${acked - stored} acknowledged spans missing`);
  failed = true;
}
if (samples.length >= 6) {
  const third = Math.floor(samples.length / 3);
  const median = (xs: number[]) => percentile(xs, 50);
  const middle = median(samples.slice(third, 2 * third).map((s) => s.rssMb));
  const last = median(samples.slice(2 * third).map((s) => s.rssMb));
  console.log(`RSS median: middle third ${middle} MB, last third ${last} MB`);
  if (last > middle * 1.15) {
    console.error('FAIL: memory keeps growing after warm-up');
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
