// `npm run bench [-- --quick]`: end-to-end ingest on the embedded store, load from a separate process,
// every acknowledged span counted in ClickHouse afterwards. Figures are medians over repeated runs.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { queryRows } from '../src/store/clickhouse.js';
import type { LoadResult, LoadSpec } from './load-generator.js';

const run = promisify(execFile);
const quick = process.argv.includes('--quick');
const repeats = quick ? 1 : 5;

async function loadFromChild(spec: LoadSpec): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/load-generator.ts', JSON.stringify(spec)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

function summarize(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted.at(-1)!, runs: values.length };
}

const dataDir = mkdtempSync(join(tmpdir(), 'bw-bench-'));
const config = { ...loadConfig(['--otlp-port', '0', '--graphql-port', '0', '--log-level', 'warn', '--data-dir', dataDir], {}) };
const service = await startService(config, createLogger(config.logLevel));

const results: Record<string, unknown> = { machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version }, quick };
const throughputs: number[] = [];
let expected = 0;
for (let r = 0; r < repeats; r++) {
  const spec: LoadSpec = {
    url: service.otlpUrl,
    encoding: 'protobuf',
    gzip: false,
    requests: quick ? 50 : 400,
    spansPerRequest: 500,
    concurrency: 8,
    tenants: 50,
  };
  const result = await loadFromChild(spec);
  expected += result.spansAcked;
  throughputs.push(result.spansAcked / result.seconds);
  console.log(`run ${r + 1}: ${Math.round(result.spansAcked / result.seconds)} spans/s acked, statuses ${JSON.stringify(result.statusCounts)}`);
}
const rows = await queryRows<{ n: string }>(service.store.client, 'SELECT toString(count()) AS n FROM spans');
const stored = Number(rows[0]?.n);
results.ingestProtobuf = { spansPerSecond: summarize(throughputs), acked: expected, stored };
await service.stop();
if (stored !== expected) {
  console.error(`row count mismatch: ${expected} acknowledged, ${stored} stored`);
  process.exit(1);
}
console.log(`end-to-end protobuf ingest: median ${Math.round(summarize(throughputs).median)} spans/s; ${stored} spans acknowledged and stored`);
writeFileSync('bench/results.json', `${JSON.stringify(results, null, 2)}\n`);
