// `npm run bench [-- --quick] [--repeats N] [--variants protobuf,json+gzip] [--sweep 8,32 | none]`: end-to-end ingest on the embedded store, load from a
// separate process, every acknowledged span counted in ClickHouse afterwards, each figure beside
// its floors measured in the same run (transport, decode, storage). Figures are medians over
// repeated runs, interleaved so that a noisy neighbour weighs on every figure alike. Writes
// bench/results.json, bench/results.md and (full mode) bench/results.svg.
// `--quick` (CI) only checks that the harness runs: one small pass, no figures worth quoting.
import { cpus, loadavg } from 'node:os';
import { queryRows } from '../src/storage/clickhouse.js';
import { startBenchService } from './bench-service.js';
import { runChild } from './child.js';
import { floorInputsFromChild, type FloorInputs } from './floor-inputs.js';
import { jsonStorageRate, nativeStorageFloor, singleRowInsertMs, startTransportFloor } from './floors.js';
import { checkpointCost, firstBatchOf, historyQuery, percentile, recordDecisionLatency, recordGcPauses, seedHistory } from './decision-path.js';
import { startHaltingAgents, type HaltingAgentsSpec } from './halting-agents.js';
import { runIncidentPhase } from './incident.js';
import { sharedQuotaFromChild } from './shared-quota-phase.js';
import { providerOutageFromChild } from './provider-outage.js';
import { loadFromChild, type LoadResult, type LoadSpec } from './load-generator.js';
import type { Encoding } from './payloads.js';
import { summarize, writeReport, type Figure, type Report, type SweepPoint } from './report.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const repeatsArg = args.indexOf('--repeats');
const repeats = repeatsArg >= 0 ? Number(args[repeatsArg + 1]) : quick ? 1 : 5;
const SPANS_PER_REQUEST = 500;
const CONCURRENCY = 8;
/**
 * Enough requests in flight (64,000 spans) for the writer's batches to reach batchMaxSpans, the
 * 20,000 rows the storage floor inserts at a time: with 64 senders they stop at about 15,000 (the
 * rows that arrive while the previous insert runs), and ClickHouse's merges cost ~20 % more a row.
 */
const SATURATING_CONCURRENCY = 128;
const TENANTS = 50;
/** bench/policy.yaml halts this tenant's runs past HALT_TOOL_CALLS tool calls a minute */
const HALT_TENANT = 'halt-bench';
const HALT_TOOL_CALLS = 5;
const haltingAgents = (runPrefix: string, runs: number, runEveryMs: number): HaltingAgentsSpec => ({
  otlpUrl: service.otlpUrl,
  graphqlUrl: service.graphqlUrl,
  tenant: HALT_TENANT,
  toolCallsToTrip: HALT_TOOL_CALLS,
  runPrefix,
  runs,
  runEveryMs,
});
const requests = quick ? 16 : 400;
const decodeSeconds = quick ? 0.2 : 2;
const BATCH_ROWS = 20_000;
/** as long as an end-to-end run lasts: long enough for merges to run alongside the inserts */
const STORAGE_FLOOR_SECONDS = 5;

/**
 * Per-tenant ingest limit: far above what any other bench tenant sends (even at 128 senders), so
 * only the noisy neighbour reaches it. Quick mode floods for one second only, and the bucket holds
 * five seconds of rate: a lower rate there so that the flood still outruns its burst.
 */
const TENANT_INGEST_RATE = quick ? 2_000 : 10_000;
const loadAverageAtStart = loadavg();
const bench = await startBenchService('bench', ['--tenant-ingest-rate', String(TENANT_INGEST_RATE)]);
const service = bench.service;
const transport = await startTransportFloor();

/** Spans stored, but for the SDK agents' (HALT_TENANT): the load generator's spans are the ones checked. */
async function storedCount(): Promise<number> {
  const rows = await queryRows<{ n: string }>(service.store.client, 'SELECT toString(count()) AS n FROM spans WHERE TenantId != {halt:String}', { halt: HALT_TENANT });
  return Number(rows[0]?.n);
}

const figures: Record<string, Figure> = {};
function record(key: string, label: string, unit: string, value: number, note?: string): void {
  figures[key] ??= { label, unit, values: [], ...(note ? { note } : {}) };
  figures[key].values.push(value);
}

let acknowledged = 0;
let stored = 0;
const failures: string[] = [];

/**
 * Waits (up to 20 s) until ClickHouse has no merge running, so that a phase is not charged for the
 * merges the previous one left behind. Each phase still pays for the merges it causes while it runs.
 */
async function settleMerges(): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline) {
    const [row] = await queryRows<{ n: string }>(service.store.client, 'SELECT toString(count()) AS n FROM system.merges');
    if (Number(row?.n) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** CPU of this process (server, ClickHouse engine and its merges) per unit of work, in µs. */
function cpuMeter(): (units: number) => number {
  const start = process.cpuUsage();
  return (units) => {
    const used = process.cpuUsage(start);
    return (used.user + used.system) / units;
  };
}

/**
 * Runs load against the service (and `alongside`, a second load at the same time, e.g. a noisy
 * neighbour) and checks that exactly the acknowledged spans were stored and that the main load was
 * acknowledged in full. The load's end is `endedAt` (performance.now()).
 */
async function ingest(
  encoding: Encoding,
  gzip: boolean,
  concurrency: number,
  n = requests,
  paced: Partial<LoadSpec> = {},
  alongside?: LoadSpec,
): Promise<LoadResult & { serverCpuUsPerSpan: number; endedAt: number; alongside?: LoadResult }> {
  await settleMerges();
  const before = await storedCount();
  const cpu = cpuMeter();
  const name = `${encoding}${gzip ? '+gzip' : ''}`;
  let endedAt = 0;
  const load = loadFromChild({ url: service.otlpUrl, encoding, gzip, requests: n, spansPerRequest: SPANS_PER_REQUEST, concurrency, tenants: TENANTS, ...paced }).finally(
    () => (endedAt = performance.now()),
  );
  const [result, other] = await Promise.all([load, alongside ? loadFromChild(alongside) : undefined]);
  const ackedHere = result.spansAcked + (other?.spansAcked ?? 0);
  const serverCpuUsPerSpan = cpu(ackedHere);
  const delta = (await storedCount()) - before;
  acknowledged += ackedHere;
  stored += delta;
  if (delta !== ackedHere) failures.push(`${name}: ${ackedHere} acknowledged, ${delta} stored`);
  if (result.spansAcked !== result.spansSent) failures.push(`${name}: statuses ${JSON.stringify(result.statusCounts)}`);
  return { ...result, serverCpuUsPerSpan, endedAt, ...(other ? { alongside: other } : {}) };
}

const variantsArg = args.indexOf('--variants'); // e.g. `--variants protobuf,json+gzip`
const variants: Array<{ encoding: Encoding; gzip: boolean }> = (variantsArg >= 0 ? args[variantsArg + 1]!.split(',') : ['protobuf', 'protobuf+gzip', 'json', 'json+gzip']).map(
  (v) => ({ encoding: v.startsWith('json') ? 'json' : 'protobuf', gzip: v.endsWith('+gzip') }),
);
const sweepArg = args.indexOf('--sweep'); // e.g. `--sweep 8,32`; `--sweep none`
const sweepLevels = sweepArg >= 0 ? (args[sweepArg + 1] === 'none' ? [] : args[sweepArg + 1]!.split(',').map(Number)) : quick ? [] : [1, 2, 4, 8, 16, 32, 64, 128];

/**
 * The transport and decode floors of one repeat. The decode floors run, and the storage floor's
 * batches are encoded, in a child process (floor-inputs.ts says why); this process only sends the
 * bytes. Returns the storage floor's batches, inserted by measureStorageFloor.
 */
async function measureFloors(): Promise<FloorInputs> {
  const t = await loadFromChild({ url: transport.url, path: '/', encoding: 'protobuf', gzip: false, requests, spansPerRequest: SPANS_PER_REQUEST, concurrency: CONCURRENCY, tenants: TENANTS });
  record('floor.transport', 'transport floor: HTTP server reading protobuf bodies only', 'spans/s', t.spansAcked / t.seconds);

  const inputs = await floorInputsFromChild({
    spansPerRequest: SPANS_PER_REQUEST,
    tenants: TENANTS,
    distinct: quick ? 4 : 64,
    requests,
    batchRows: BATCH_ROWS,
    decodeSeconds,
    json: !quick,
  });
  record('floor.decode', 'decode floor: protobufjs (referenceDecode), main thread of its own process', 'spans/s', inputs.referenceDecode);
  record('decode.handwritten', 'decode: hand-written decoder (decode-protobuf.ts), main thread of its own process', 'spans/s', inputs.handWrittenDecode);
  return inputs;
}

/**
 * The storage floor, measured right before the end-to-end run it is compared with: the machine's
 * speed drifts from minute to minute (the floor's own CPU per row moved 7.3-9.9 µs within one
 * bench), and the closer the two phases, the less of that drift the ratio carries.
 */
async function measureStorageFloor(inputs: FloorInputs): Promise<void> {
  await settleMerges();
  const before = await storedCount();
  const floorCpu = cpuMeter();
  const floor = await nativeStorageFloor(service.store.client, 'spans', inputs.native, quick ? 0 : STORAGE_FLOOR_SECONDS);
  const floorCpuUs = floorCpu(floor.rows);
  if ((await storedCount()) - before !== floor.rows) failures.push(`storage floor: ${floor.rows} inserted, ${(await storedCount()) - before} stored`);
  record(
    'floor.storage',
    `storage floor: the same spans, encoded beforehand, inserted as Native via INFILE, ${BATCH_ROWS.toLocaleString('en-US')} rows/insert, for ${STORAGE_FLOOR_SECONDS} s`,
    'rows/s',
    floor.rows / floor.seconds,
  );
  record('cpu.storage', 'storage floor: CPU of the process per row (engine and merges during the phase)', 'µs', floorCpuUs);
}

/** Storage figures that are no floor of any ratio: the previous writer's format, and one-row inserts. */
async function measureStorageAlternatives(inputs: FloorInputs): Promise<void> {
  const json = await jsonStorageRate(service.store.client, 'spans', inputs.json);
  record('storage.json', `storage: JSONEachRow through the client (previous writer), ${BATCH_ROWS.toLocaleString('en-US')} rows/insert`, 'rows/s', json.rows / json.seconds);
  const oneRow = await singleRowInsertMs(service.store.client, 'spans', inputs.oneRow, 10);
  record('storage.insert1', 'storage: one insert of a single row, Native via INFILE (the fixed cost each insert pays)', 'ms', oneRow);
}

for (let r = 0; r < repeats; r++) {
  const inputs = await measureFloors();
  if (!quick) await measureStorageAlternatives(inputs);

  for (const { encoding, gzip } of variants) {
    const name = `${encoding}${gzip ? ' + gzip' : ''}`;
    const result = await ingest(encoding, gzip, CONCURRENCY);
    const rate = result.spansAcked / result.seconds;
    record(`ingest.${encoding}${gzip ? '.gzip' : ''}`, `end-to-end ingest, ${name}`, 'spans/s', rate);
    record(`latency.${encoding}${gzip ? '.gzip' : ''}.p99`, `request latency p99, ${name}`, 'ms', result.latencyMs.p99);
    if (encoding === 'protobuf' && !gzip) record('cpu.ingest.protobuf', 'end-to-end protobuf: server CPU per span (main thread, GC, engine, merges)', 'µs', result.serverCpuUsPerSpan);
    console.log(`run ${r + 1}: ${name}: ${Math.round(rate)} spans/s, p50 ${result.latencyMs.p50.toFixed(1)} ms, p99 ${result.latencyMs.p99.toFixed(1)} ms`);
  }
  // 8 senders keep only 4,000 spans in flight, so that figure is bound by insert latency; this one
  // offers enough load to keep the machine busy (sustained throughput).
  await measureStorageFloor(inputs);
  {
    // As long as the storage floor runs (5 s and more), so that it pays for its merges alike.
    const result = await ingest('protobuf', false, SATURATING_CONCURRENCY, requests * 4);
    const rate = result.spansAcked / result.seconds;
    record('ingest.protobuf.saturated', `end-to-end ingest, protobuf, ${SATURATING_CONCURRENCY} senders`, 'spans/s', rate);
    // The machine's speed drifts from minute to minute: the ratio to the floor measured moments
    // before, run by run, is steadier than the ratio of the two medians.
    record('ratio.saturated', `end-to-end protobuf, ${SATURATING_CONCURRENCY} senders / storage floor of the same run`, '%', (rate / figures['floor.storage']!.values.at(-1)!) * 100);
    record('latency.protobuf.saturated.p99', `request latency p99, protobuf, ${SATURATING_CONCURRENCY} senders`, 'ms', result.latencyMs.p99);
    record('cpu.ingest.protobuf.saturated', `end-to-end protobuf, ${SATURATING_CONCURRENCY} senders: server CPU per span`, 'µs', result.serverCpuUsPerSpan);
    const loadCpuUs = (result.cpuSeconds * 1e6) / result.spansAcked;
    record('cpu.load.saturated', `end-to-end protobuf, ${SATURATING_CONCURRENCY} senders: the load generator's CPU per span (same 2 cores)`, 'µs', loadCpuUs);
    // With both cores busy in both phases, the throughput ratio is this ratio of CPU per row: it
    // says what the ratio comes from, and drifts less with the machine's speed.
    record(
      'ratio.saturated.cpu',
      `storage floor's CPU per row / end-to-end CPU per span (server + load generator), ${SATURATING_CONCURRENCY} senders, same run`,
      '%',
      (figures['cpu.storage']!.values.at(-1)! / (result.serverCpuUsPerSpan + loadCpuUs)) * 100,
    );
    console.log(`run ${r + 1}: protobuf, ${SATURATING_CONCURRENCY} senders: ${Math.round(rate)} spans/s, p99 ${result.latencyMs.p99.toFixed(1)} ms`);
  }
  console.log(
    `run ${r + 1}: floors: transport ${Math.round(figures['floor.transport']!.values.at(-1)!)} spans/s, decode ${Math.round(figures['floor.decode']!.values.at(-1)!)} spans/s, ` +
      `storage ${Math.round(figures['floor.storage']!.values.at(-1)!)} rows/s`,
  );
}

const median = (key: string) => (figures[key] ? summarize(figures[key].values).median : NaN);

// Decision latency (request receipt to decisions published) under protobuf ingest paced at 50 %
// and 90 % of the maximum sustained load (the median saturated throughput measured above), and
// with one sender (each request alone).
const maxLoad = median('ingest.protobuf.saturated');
const PACED_SECONDS = quick ? 1 : 10;
const pacedRequests = (spansPerSecond: number) => Math.max(4, Math.round((spansPerSecond * PACED_SECONDS) / SPANS_PER_REQUEST));
// Each paced phase is repeated like the throughput runs: a p99 of one 10 s phase moves by a
// millisecond or more from run to run on a shared machine.
for (let r = 0; r < repeats; r++) {
  for (const share of [50, 90]) {
    const spansPerSecond = (maxLoad * share) / 100;
    // Two seconds at the same pace first, not recorded: the first full GCs of a phase collect what
    // the phase before it (at another rate) left in the old generation.
    await ingest('protobuf', false, SATURATING_CONCURRENCY, Math.ceil(pacedRequests(spansPerSecond) / 5), { spansPerSecond });
    const recorder = recordDecisionLatency(service);
    const gc = recordGcPauses();
    // Agents (a process of their own) trip their runs' breakers one after another while the load
    // runs; the runs whose crossing batch arrived between the load's first batch and its end count.
    const loadStart = firstBatchOf(service, (tenant) => tenant.startsWith('tenant-'));
    const agents = await startHaltingAgents(service, haltingAgents(`load${share}-${r}`, 1, 500));
    const result = await ingest('protobuf', false, SATURATING_CONCURRENCY, pacedRequests(spansPerSecond), { spansPerSecond });
    recorder.stop();
    gc.stop();
    const halts = await agents.stop();
    const loadStartedAt = await loadStart;
    const haltMs = halts.filter((h) => h.arrivedAt >= loadStartedAt && h.arrivedAt < result.endedAt).map((h) => h.ms);
    if (haltMs.length === 0 && !quick) failures.push(`no run saw HALT at checkpoint() during the ${share} % phase`);
    const label = `${share} % of max load (${Math.round(spansPerSecond).toLocaleString('en-US')} spans/s paced)`;
    record(`decision.load${share}.p50`, `decision latency p50, ${label}`, 'ms', percentile(recorder.samples, 50));
    record(`decision.load${share}.p99`, `decision latency p99, ${label}`, 'ms', percentile(recorder.samples, 99));
    record(`halt.load${share}.p50`, `crossing batch received -> checkpoint() sees HALT, p50, ${label}`, 'ms', percentile(haltMs, 50));
    record(`halt.load${share}.p99`, `crossing batch received -> checkpoint() sees HALT, p99, ${label}`, 'ms', percentile(haltMs, 99));
    record(`halt.load${share}.runs`, `runs halted during the ${share} % phase`, 'runs', haltMs.length);
    record(`decision.load${share}.late`, `requests that could not leave on time at ${share} % (all senders waiting)`, 'requests', result.late);
    record(`decision.load${share}.gc`, `GC pauses of the main thread during the ${share} % phase, summed, per second`, 'ms/s', gc.pauses.reduce((a, b) => a + b, 0) / result.seconds);
    record(`decision.load${share}.gcmax`, `longest GC pause during the ${share} % phase`, 'ms', Math.max(0, ...gc.pauses));
    console.log(`run ${r + 1}: decision latency at ${label}: p50 ${percentile(recorder.samples, 50).toFixed(1)} ms, p99 ${percentile(recorder.samples, 99).toFixed(1)} ms`);
  }
}
{
  const recorder = recordDecisionLatency(service);
  await ingest('protobuf', false, 1, quick ? 8 : 200);
  recorder.stop();
  record('decision.1.p50', 'decision latency p50, one sender', 'ms', percentile(recorder.samples, 50));
  record('decision.1.p99', 'decision latency p99, one sender', 'ms', percentile(recorder.samples, 99));
}

// Noisy neighbour: the same 50 % load from 50 tenants while one more tenant floods the receiver
// from 16 senders as fast as it is answered. Its own key only: it gets 429 past its ingest rate,
// every other tenant's span is accepted, and their decision latency is compared with the 50 %
// figure without the flood.
{
  const spansPerSecond = maxLoad / 2;
  const n = pacedRequests(spansPerSecond);
  await ingest('protobuf', false, SATURATING_CONCURRENCY, Math.ceil(n / 5), { spansPerSecond }); // warm-up, as above
  const victims = recordDecisionLatency(service, (tenant) => !tenant.startsWith('noisy-'));
  const flood: LoadSpec = {
    url: service.otlpUrl,
    encoding: 'protobuf',
    gzip: false,
    requests: 1_000_000,
    maxSeconds: PACED_SECONDS,
    spansPerRequest: SPANS_PER_REQUEST,
    concurrency: 16,
    tenants: 1,
    tenantPrefix: 'noisy-',
  };
  const result = await ingest('protobuf', false, SATURATING_CONCURRENCY, n, { spansPerSecond }, flood);
  victims.stop();
  const noisy = result.alongside!;
  const refused = noisy.statusCounts['429'] ?? 0;
  if (refused === 0) failures.push(`noisy neighbour: never refused (${JSON.stringify(noisy.statusCounts)})`);
  record('noisy.decision.p50', 'noisy neighbour: other tenants\' decision latency p50 at 50 % load while one tenant floods', 'ms', percentile(victims.samples, 50));
  record('noisy.decision.p99', 'noisy neighbour: other tenants\' decision latency p99 at 50 % load while one tenant floods', 'ms', percentile(victims.samples, 99));
  record('noisy.request.p99', 'noisy neighbour: other tenants\' request latency p99', 'ms', result.latencyMs.p99);
  record('noisy.flood.rate', 'noisy neighbour: spans/s the flooding tenant offered', 'spans/s', noisy.spansSent / noisy.seconds);
  record('noisy.flood.refused', 'noisy neighbour: share of the flooding tenant\'s requests answered 429', '%', (refused / (noisy.spansSent / SPANS_PER_REQUEST)) * 100);
  console.log(
    `noisy neighbour: flood offered ${Math.round(noisy.spansSent / noisy.seconds)} spans/s, statuses ${JSON.stringify(noisy.statusCounts)}; ` +
      `others: all ${result.spansAcked} accepted, decision p50 ${percentile(victims.samples, 50).toFixed(1)} ms, p99 ${percentile(victims.samples, 99).toFixed(1)} ms`,
  );
}

// From the threshold-crossing batch's receipt to the SDK's checkpoint() seeing HALT on an idle
// service (under load: the paced phases above); checkpoint() cost.
{
  const agents = await startHaltingAgents(service, haltingAgents('idle', quick ? 2 : 20, 0));
  const haltMs = (await agents.stop()).map((h) => h.ms);
  if (haltMs.length === 0) failures.push('no run saw HALT at checkpoint()');
  record('halt.checkpoint.p50', 'crossing batch received -> checkpoint() sees HALT, p50, idle service', 'ms', percentile(haltMs, 50));
  record('halt.checkpoint.p99', 'crossing batch received -> checkpoint() sees HALT, p99, idle service', 'ms', percentile(haltMs, 99));
  record('checkpoint.cost', 'checkpoint() cost (cached decision, no I/O)', 'µs/call', await checkpointCost(service, HALT_TENANT));
}

// A tenant's per-minute timeseries over one day through GraphQL, on many stored spans.
const historySpans = quick ? 100_000 : 10_000_000;
await seedHistory(service, 'history-bench', historySpans);
for (const ms of await historyQuery(service, 'history-bench', quick ? 2 : 7)) {
  record('history.day', `GraphQL per-minute timeseries over a day, ${historySpans.toLocaleString('en-US')} spans stored for the tenant`, 'ms', ms);
}

// Memory per active run and per tenant (100k runs over 10k tenants), in a fresh process.
{
  const [tenants, runs] = quick ? [100, 1000] : [10_000, 100_000];
  const memory = await runChild<{ bytesPerRun: number; bytesPerTenant: number }>('bench/memory.ts', [String(tenants), String(runs)], ['--expose-gc']);
  record('memory.run', `memory per active run, whole decision path (${runs.toLocaleString('en-US')} runs over ${tenants.toLocaleString('en-US')} tenants)`, 'bytes', memory.bytesPerRun);
  record('memory.tenant', 'memory per tenant', 'bytes', memory.bytesPerTenant);
}

// Throughput and latency over load: protobuf at growing numbers of concurrent senders.
const sweep: SweepPoint[] = [];
{
  for (const concurrency of sweepLevels) {
    const result = await ingest('protobuf', false, concurrency, Math.max(100, concurrency * 25));
    sweep.push({ concurrency, spansPerSecond: result.spansAcked / result.seconds, latencyP50Ms: result.latencyMs.p50, latencyP99Ms: result.latencyMs.p99 });
    console.log(`sweep: ${concurrency} senders: ${Math.round(result.spansAcked / result.seconds)} spans/s, p99 ${result.latencyMs.p99.toFixed(1)} ms`);
  }
}

// OTLP answer latency at low load (issue 21, point 3): POST to the 200, small requests (10 spans),
// each sender waiting for its answer before the next; the SDK's exports wait for this answer.
for (const senders of [1, 8, 64]) {
  const result = await ingest('protobuf', false, senders, quick ? senders * 2 : Math.max(200, senders * 20), { spansPerRequest: 10 });
  record(`answer.${senders}.p50`, `OTLP answer latency p50, ${senders} sender(s), 10-span requests`, 'ms', result.latencyMs.p50);
  record(`answer.${senders}.p99`, `OTLP answer latency p99, ${senders} sender(s), 10-span requests`, 'ms', result.latencyMs.p99);
  record(`answer.${senders}.rate`, `offered load at ${senders} sender(s), 10-span requests`, 'spans/s', result.spansAcked / result.seconds);
  console.log(`answer latency: ${senders} senders: p50 ${result.latencyMs.p50.toFixed(1)} ms, p99 ${result.latencyMs.p99.toFixed(1)} ms`);
}

await transport.close();
await bench.stop();

// Incident: a trip storm under the built-in default policy against the same load where nothing
// trips, each on a process of its own (bench/incident.ts), interleaved; then the storm paced at
// half the calm rate for its decision latency.
{
  const seconds = quick ? 2 : 10;
  for (let r = 0; r < (quick ? 1 : Math.min(repeats, 3)); r++) {
    const calm = await runIncidentPhase('calm', seconds);
    const storm = await runIncidentPhase('default', seconds);
    const paced = await runIncidentPhase('default', seconds, calm.rate / 2);
    for (const phase of [calm, storm, paced]) {
      if (phase.exitCode !== 0) failures.push(`incident (${phase.policy}): exit code ${phase.exitCode} after SIGTERM`);
      if (phase.sigtermMs > 10_000) failures.push(`incident (${phase.policy}): SIGTERM took ${Math.round(phase.sigtermMs)} ms (over 10 s)`);
      const connectionErrors = Object.keys(phase.load.statusCounts).filter((status) => !/^\d+$/.test(status));
      if (connectionErrors.length > 0) failures.push(`incident (${phase.policy}): connection errors ${JSON.stringify(phase.load.statusCounts)}`);
    }
    if (storm.auditPerSecond === 0) failures.push('incident: the storm tripped no breaker (no audit event written)');
    record('incident.calm.rate', 'incident: ingest with nothing tripping (bench policy), 16 senders, 1,000-span requests, 100 tenants', 'spans/s', calm.rate);
    record('incident.storm.rate', 'incident: the same load under the default policy (every run and tenant trips)', 'spans/s', storm.rate);
    record('incident.storm.ratio', 'incident: storm ingest as a share of calm ingest (target >= 80 %)', '%', (storm.rate / calm.rate) * 100);
    record('incident.storm.audit', 'incident: audit events written to ClickHouse during the storm', 'events/s', storm.auditPerSecond);
    record('incident.storm.coalesced', 'incident: run transitions coalesced during the storm', 'events', storm.coalesced);
    record('incident.storm.sigterm', 'incident: SIGTERM right after the storm to exit (target <= 10 s)', 'ms', storm.sigtermMs);
    record('incident.paced.decision.p99', 'incident: decision latency p99 during the storm paced at half the calm rate (histogram bucket bound)', 'ms', paced.decisionP99Ms);
    record('incident.paced.audit', 'incident: audit events written during the paced storm', 'events/s', paced.auditPerSecond);
    console.log(
      `incident ${r + 1}: calm ${Math.round(calm.rate)} spans/s, storm ${Math.round(storm.rate)} spans/s (${((storm.rate / calm.rate) * 100).toFixed(0)} %), ` +
        `${Math.round(storm.auditPerSecond)} audit events/s, SIGTERM ${Math.round(storm.sigtermMs)} ms; paced storm decision p99 <= ${paced.decisionP99Ms} ms; ` +
        `resent on a closed keep-alive socket: ${calm.load.retried + storm.load.retried + paced.load.retried}`,
    );
  }
}
// Shared quota (issue 21): eight steady tenants and a runaway on one provider token bucket, the
// runaway on the SDK, then on plain OpenTelemetry at each exporter setting (bench/shared-quota-phase.ts).
{
  const runs = quick ? 2 : 30;
  const summaries = await sharedQuotaFromChild(runs, quick ? 1 : 30);
  summaries.forEach((v, i) => {
    const key = `quota.${i}`;
    const what = v.name;
    if (v.runs === 0) failures.push(`shared quota (${what}): no run measured`);
    record(`${key}.clean`, `shared quota, ${what}: runs with no model call after the crossing (of ${v.runs})`, 'runs', v.cleanRuns);
    record(`${key}.steps`, `shared quota, ${what}: model calls after the crossing, median (max ${v.stepsAfterMax})`, 'calls', v.stepsAfterMedian);
    record(`${key}.tokens`, `shared quota, ${what}: tokens after the crossing as a share of the shared quota, max over runs`, '%', v.tokenShareMax);
    // JSON carries the plain agent's missing SDK figures (NaN) as null
    const sdkHalt = typeof v.sdkHaltP50 === 'number';
    if (sdkHalt) {
      record(`${key}.sdk.p50`, `shared quota, ${what}: crossing -> HALT in the SDK, p50`, 'ms', v.sdkHaltP50);
      record(`${key}.sdk.p99`, `shared quota, ${what}: crossing -> HALT in the SDK, p99`, 'ms', v.sdkHaltP99);
      record(`${key}.slots`, `shared quota, ${what}: runs whose crossing span waited for an export slot (all 4 awaiting an answer)`, 'runs', v.slotsFullRuns);
    }
    record(`${key}.export.p50`, `shared quota, ${what}: crossing -> its span received by Breakwater, p50`, 'ms', v.exportP50);
    record(`${key}.server.p50`, `shared quota, ${what}: crossing -> HALT published by Breakwater, p50`, 'ms', v.serverHaltP50);
    record(`${key}.server.p99`, `shared quota, ${what}: crossing -> HALT published by Breakwater, p99`, 'ms', v.serverHaltP99);
    record(`${key}.steady429`, `shared quota, ${what}: steady tenants' 429s (of ${v.steadyCalls} calls)`, 'calls', v.steady429);
    console.log(
      `shared quota, ${what}: ${v.cleanRuns}/${v.runs} runs clean, max ${v.stepsAfterMax} calls after the crossing, ` +
        `${sdkHalt ? `SDK HALT p50 ${v.sdkHaltP50.toFixed(1)} ms, ` : ''}server HALT p50 ${v.serverHaltP50.toFixed(1)} ms, steady 429s ${v.steady429}`,
    );
  });
}
// Provider outage (issue 24): a 5xx storm on the primary of 20 tenants' fallback ladder, then the
// heal (bench/provider-outage.ts): no call should find its run HALTed, and every tenant should be
// back on tier 0 within a breaker wait and a recovery window.
{
  const outage = await providerOutageFromChild({ tenants: 20, busyLoops: 12, calmMs: quick ? 500 : 1_000, stormMs: quick ? 2_500 : 6_000, watchMs: quick ? 1_000 : 3_000, recoveryCapMs: 15_000 });
  const haltedShare = outage.requests > 0 ? (outage.halted / outage.requests) * 100 : 0;
  // JSON carries a recovery that never came (NaN) as null
  outage.recoveryMs = typeof outage.recoveryMs === 'number' ? outage.recoveryMs : Number.NaN;
  record('outage.halted', `provider outage, 20 tenants: share of calls that found their run HALTed (of ${outage.requests}; target 0, a fallback is permitted)`, '%', haltedShare);
  record('outage.recovery', 'provider outage: provider healed -> every tenant back on tier 0', 'ms', outage.recoveryMs);
  record('outage.degraded', 'provider outage: tenants degraded during the storm (of 20)', 'tenants', outage.degradedTenants);
  record('outage.errorRatio', 'provider outage: highest tenant errorRatio from the storm on (provider failures are not the tenant\'s)', 'ratio', outage.peakErrorRatio);
  record('outage.demoted', 'provider outage: tenants demoted again after all were back on tier 0', 'tenants', outage.demotedAfterRecovery);
  if (outage.halted > 0) failures.push(`provider outage: ${outage.halted} of ${outage.requests} calls found their run HALTed (${haltedShare.toFixed(1)} %)`);
  if (Number.isNaN(outage.recoveryMs)) failures.push('provider outage: not every tenant was back on tier 0 within 15 s of the heal');
  if (outage.demotedAfterRecovery > 0) failures.push(`provider outage: ${outage.demotedAfterRecovery} tenants demoted again after the recovery`);
  console.log(
    `provider outage: ${outage.halted}/${outage.requests} calls HALTed, ${outage.degradedTenants} tenants degraded, ` +
      `all back on tier 0 ${outage.recoveryMs} ms after the heal, ${outage.demotedAfterRecovery} demoted again`,
  );
}
const summarized = Object.fromEntries(Object.entries(figures).map(([key, f]) => [key, { ...f, ...summarize(f.values) }]));

const report: Report = {
  machine: {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverageAtStart,
    loadAverageAtEnd: loadavg(),
  },
  mode: quick ? 'quick' : 'full',
  repeats,
  load: {
    'spans/request': SPANS_PER_REQUEST,
    'requests/run': requests,
    'concurrent senders': `${CONCURRENCY} (and ${SATURATING_CONCURRENCY})`,
    tenants: TENANTS,
    'tenant ingest rate (spans/s)': TENANT_INGEST_RATE,
  },
  figures: summarized,
  ratios: {
    'end-to-end protobuf / storage floor': median('ingest.protobuf') / median('floor.storage'),
    [`end-to-end protobuf, ${SATURATING_CONCURRENCY} senders / storage floor`]: median('ingest.protobuf.saturated') / median('floor.storage'),
    'end-to-end protobuf / transport floor': median('ingest.protobuf') / median('floor.transport'),
    'end-to-end protobuf / decode floor': median('ingest.protobuf') / median('floor.decode'),
  },
  sweep,
  verification: { acknowledged, stored },
};
writeReport(report, 'bench');
console.log(
  `end-to-end protobuf ingest: median ${Math.round(median('ingest.protobuf'))} spans/s with ${CONCURRENCY} senders, ` +
    `${Math.round(median('ingest.protobuf.saturated'))} with ${SATURATING_CONCURRENCY} (${median('ratio.saturated').toFixed(0)} % of the storage floor, median of the runs' ratios)`,
);
console.log(`${acknowledged} spans acknowledged, ${stored} stored; results in bench/results.json and bench/results.md`);
if (failures.length > 0) {
  console.error(`verification failed:\n${failures.join('\n')}`);
  process.exit(1);
}
