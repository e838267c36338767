// Load generator, run as its own process so the server under test has the main thread to itself.
// Payloads are built once with the official OTLP serializers, then POSTed with a fixed concurrency
// (each of `concurrency` senders waits for its answer before sending the next request), or paced
// at `spansPerSecond` (open loop: request i is due at start + i / rate, with at most `concurrency`
// in flight; a request that could not leave on time is counted as late).
import { Agent, request } from 'node:http';
import { isEntry, runChild } from './child.js';
import { buildPayloads, freshPayload, type PayloadSpec } from './payloads.js';

export interface LoadSpec extends PayloadSpec {
  url: string;
  /** path on `url` to POST to */
  path?: string;
  requests: number;
  concurrency: number;
  /** pace requests at this many spans per second instead of sending as fast as answers come */
  spansPerSecond?: number;
  /** stop sending after this long, even if `requests` have not all been sent */
  maxSeconds?: number;
}

export interface LoadResult {
  spansSent: number;
  spansAcked: number;
  seconds: number;
  statusCounts: Record<string, number>;
  /** request latency (send to answer), milliseconds */
  latencyMs: { p50: number; p99: number; max: number };
  /** CPU the load generator itself used while sending (it shares the machine with the server) */
  cpuSeconds: number;
  /** paced load: requests that left more than 10 ms after they were due (all senders busy) */
  late: number;
  /** requests resent once because the server closed their idle keep-alive socket as they left */
  retried: number;
}

export async function generateLoad(spec: LoadSpec): Promise<LoadResult> {
  const payloads = buildPayloads(spec, Math.min(spec.requests, 64));
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const url = new URL(`${spec.url}${spec.path ?? '/v1/traces'}`);
  const headers: Record<string, string> = {
    'content-type': spec.encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json',
    ...(spec.gzip ? { 'content-encoding': 'gzip' } : {}),
  };
  const statusCounts: Record<string, number> = {};
  const latencies: number[] = [];
  let next = 0;
  let sent = 0;
  let acked = 0;
  let late = 0;
  let retried = 0;
  const intervalMs = spec.spansPerSecond ? (1000 * spec.spansPerRequest) / spec.spansPerSecond : 0;
  const maxMs = spec.maxSeconds === undefined ? Infinity : spec.maxSeconds * 1000;
  const sendOnce = (body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', (err: NodeJS.ErrnoException) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
      req.end(body);
    });
  // A keep-alive socket the server closed as the request left resets it; exporters resend then
  // (Node's documented pattern). Any other failure is counted under its code, not thrown.
  const send = async (body: Buffer): Promise<number | string> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await sendOnce(body);
      } catch (err) {
        const { code, reusedSocket } = err as NodeJS.ErrnoException & { reusedSocket?: boolean };
        if (attempt === 0 && reusedSocket && code === 'ECONNRESET') {
          retried++;
          continue;
        }
        return code ?? 'error';
      }
    }
  };
  const worker = async () => {
    while (next < spec.requests && performance.now() - started < maxMs) {
      const i = next++;
      if (intervalMs > 0) {
        const wait = started + i * intervalMs - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        else if (wait < -10) late++;
      }
      sent++;
      const body = freshPayload(payloads[i % payloads.length]!, i);
      const sentAt = performance.now();
      const status = await send(body);
      latencies.push(performance.now() - sentAt);
      statusCounts[status] = (statusCounts[status] ?? 0) + 1;
      if (status === 200) acked += spec.spansPerRequest;
    }
  };
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    spansSent: sent * spec.spansPerRequest,
    spansAcked: acked,
    seconds,
    statusCounts,
    latencyMs: { p50: at(0.5), p99: at(0.99), max: latencies.at(-1) ?? 0 },
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    late,
    retried,
  };
}

/** Generates the load from a process of its own, so that the server under test has the main thread to itself. */
export function loadFromChild(spec: LoadSpec): Promise<LoadResult> {
  return runChild<LoadResult>('bench/load-generator.ts', [JSON.stringify(spec)]);
}

// As a child process: read the spec from argv, print the result as JSON.
if (isEntry(import.meta.url)) {
  const spec = JSON.parse(process.argv[2]!) as LoadSpec;
  generateLoad(spec).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (err) => {
      process.stderr.write(`${err}\n`);
      process.exit(1);
    },
  );
}
