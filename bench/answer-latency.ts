// `node --import tsx bench/answer-latency.ts [--repeats N] [-- service flags...]`: the OTLP answer
// latency at low load (1, 8, 64 senders of 10-span requests) and the ingest throughput at 128
// senders (500-span requests), on one embedded store, with the service flags given after `--`
// (e.g. `-- --ingest-wal false`). The same phases as `answer.*` and `ingest.protobuf.saturated` in
// bench/run.ts, alone, so that two commit paths can be compared in minutes. Prints medians as JSON.
import { queryRows } from '../src/storage/clickhouse.js';
import { startBenchService } from './bench-service.js';
import { loadFromChild, type LoadSpec } from './load-generator.js';
import { summarize } from './report.js';

const args = process.argv.slice(2);
const split = args.indexOf('--');
const own = split >= 0 ? args.slice(0, split) : args;
const flags = split >= 0 ? args.slice(split + 1) : [];
const repeatsAt = own.indexOf('--repeats');
const repeats = repeatsAt >= 0 ? Number(own[repeatsAt + 1]) : 3;

const bench = await startBenchService('answer', flags);
const { service } = bench;
const figures: Record<string, number[]> = {};
const record = (key: string, value: number) => (figures[key] ??= []).push(value);
const failures: string[] = [];

async function storedCount(): Promise<number> {
  const rows = await queryRows<{ n: string }>(service.store.client, 'SELECT toString(count()) AS n FROM spans');
  return Number(rows[0]?.n);
}

/** Runs one load and checks that exactly the acknowledged spans are stored (waiting for background commits). */
async function phase(spec: Omit<LoadSpec, 'url' | 'encoding' | 'gzip' | 'tenants'>) {
  const before = await storedCount();
  const result = await loadFromChild({ url: service.otlpUrl, encoding: 'protobuf', gzip: false, tenants: 50, ...spec });
  // Acknowledged from the write-ahead file, spans reach ClickHouse a moment after their answer.
  let stored = (await storedCount()) - before;
  for (let waited = 0; stored < result.spansAcked && waited < 10_000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    stored = (await storedCount()) - before;
  }
  if (stored !== result.spansAcked) failures.push(`${spec.concurrency} senders: ${result.spansAcked} acknowledged, ${stored} stored`);
  if (result.spansAcked !== result.spansSent) failures.push(`${spec.concurrency} senders: statuses ${JSON.stringify(result.statusCounts)}`);
  return result;
}

for (let r = 0; r < repeats; r++) {
  for (const senders of [1, 8, 64]) {
    const result = await phase({ concurrency: senders, requests: Math.max(200, senders * 20), spansPerRequest: 10 });
    record(`answer.${senders}.p50`, result.latencyMs.p50);
    record(`answer.${senders}.p99`, result.latencyMs.p99);
    record(`answer.${senders}.rate`, result.spansAcked / result.seconds);
  }
  const saturated = await phase({ concurrency: 128, requests: 1600, spansPerRequest: 500 });
  record('ingest.128.rate', saturated.spansAcked / saturated.seconds);
  record('ingest.128.p99', saturated.latencyMs.p99);
  console.error(`pass ${r + 1}: ${Object.entries(figures).map(([k, v]) => `${k} ${v.at(-1)!.toFixed(1)}`).join(', ')}`);
}
await bench.stop();
const medians = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, { median: summarize(v).median, values: v.map((x) => Math.round(x * 10) / 10) }]));
console.log(JSON.stringify({ flags, medians, failures }, null, 1));
if (failures.length > 0) process.exitCode = 1;
