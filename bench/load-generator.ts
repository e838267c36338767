// Load generator, run as its own process so the server under test has the main thread to itself.
// Payloads are built once with the official OTLP serializers, then POSTed with a fixed concurrency.
import { Agent, request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { recordingTracer } from '../test/helpers/otel.js';

export interface LoadSpec {
  url: string;
  encoding: 'protobuf' | 'json';
  gzip: boolean;
  requests: number;
  spansPerRequest: number;
  concurrency: number;
  tenants: number;
}

export interface LoadResult {
  spansSent: number;
  spansAcked: number;
  seconds: number;
  statusCounts: Record<string, number>;
}

/** Distinct payloads (tenants and runs vary) so the server does real work, not cached work. */
function buildPayloads(spec: LoadSpec, distinct: number): Buffer[] {
  const payloads: Buffer[] = [];
  for (let p = 0; p < distinct; p++) {
    const { tracer, finished } = recordingTracer({ 'service.name': 'bench-agent', 'tenant.id': `tenant-${p % spec.tenants}` });
    for (let i = 0; i < spec.spansPerRequest; i++) {
      const tool = i % 3 === 0;
      tracer
        .startSpan(tool ? 'execute_tool search' : 'chat gpt-4o-mini', {
          attributes: tool
            ? { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search', 'agent.run.id': `run-${p}-${i % 10}` }
            : {
                'gen_ai.operation.name': 'chat',
                'gen_ai.provider.name': 'openai',
                'gen_ai.request.model': 'gpt-4o-mini',
                'gen_ai.usage.input_tokens': 900 + i,
                'gen_ai.usage.output_tokens': 120,
                'agent.run.id': `run-${p}-${i % 10}`,
              },
        })
        .end();
    }
    const spans = finished();
    const raw = spec.encoding === 'protobuf' ? ProtobufTraceSerializer.serializeRequest(spans)! : JsonTraceSerializer.serializeRequest(spans)!;
    payloads.push(spec.gzip ? gzipSync(raw) : Buffer.from(raw));
  }
  return payloads;
}

export async function generateLoad(spec: LoadSpec): Promise<LoadResult> {
  const payloads = buildPayloads(spec, Math.min(spec.requests, 64));
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const url = new URL(`${spec.url}/v1/traces`);
  const headers: Record<string, string> = {
    'content-type': spec.encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json',
    ...(spec.gzip ? { 'content-encoding': 'gzip' } : {}),
  };
  const statusCounts: Record<string, number> = {};
  let next = 0;
  let acked = 0;
  const send = (body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
  const worker = async () => {
    while (next < spec.requests) {
      const i = next++;
      const status = await send(payloads[i % payloads.length]!);
      statusCounts[status] = (statusCounts[status] ?? 0) + 1;
      if (status === 200) acked += spec.spansPerRequest;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { spansSent: spec.requests * spec.spansPerRequest, spansAcked: acked, seconds, statusCounts };
}

// As a child process: read the spec from argv, print the result as JSON.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const spec = JSON.parse(process.argv[2]!) as LoadSpec;
  generateLoad(spec).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (err) => {
      process.stderr.write(`${err}\n`);
      process.exit(1);
    },
  );
}
