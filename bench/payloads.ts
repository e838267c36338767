// OTLP request bodies as an instrumented agent platform sends them: spans from the OpenTelemetry
// SDK, serialized by the official OTLP serializers (the exporters' own encoding).
import { gzipSync } from 'node:zlib';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { recordingTracer } from '../test/helpers/otel.js';

export type Encoding = 'protobuf' | 'json';

export interface PayloadSpec {
  encoding: Encoding;
  gzip: boolean;
  spansPerRequest: number;
  tenants: number;
  /** tenant ids are `${tenantPrefix}${n}` (default `tenant-`) */
  tenantPrefix?: string;
  /** every send starts ten new runs (a fleet starting runs) instead of adding to the template's ten */
  freshRuns?: boolean;
}

/**
 * A request body that can be sent many times as different spans: the offsets of its span ids, so
 * each send gets ids of its own (a body sent twice is a retried delivery, which Breakwater counts
 * and stores once: replaying one would measure the duplicate check, not ingest).
 */
export interface PayloadTemplate {
  raw: Buffer;
  encoding: Encoding;
  gzip: boolean;
  /** where each span id starts: 8 bytes in protobuf, 16 hex digits in JSON */
  idOffsets: number[];
  /** where each run id's placeholder (RUN_TOKEN) starts, with freshRuns */
  runOffsets: number[];
}

/** Stands in a run id for the send's counter, in hex: as long as the 8 hex digits it becomes. */
const RUN_TOKEN = 'RRRRRRRR';

export function rawPayload(spec: Pick<PayloadSpec, 'encoding' | 'spansPerRequest' | 'tenants' | 'tenantPrefix'>, p: number): Buffer {
  return payloadTemplate({ ...spec, gzip: false }, p).raw;
}

/** Request `p` of a run: chat calls with usage and tool calls, a tenant and runs of their own. */
export function payloadTemplate(spec: PayloadSpec, p: number): PayloadTemplate {
  const { tracer, finished } = recordingTracer({ 'service.name': 'bench-agent', 'tenant.id': `${spec.tenantPrefix ?? 'tenant-'}${p % spec.tenants}` });
  const runSuffix = spec.freshRuns ? `-${RUN_TOKEN}` : '';
  for (let i = 0; i < spec.spansPerRequest; i++) {
    const tool = i % 3 === 0;
    const runId = `run-${p}-${i % 10}${runSuffix}`;
    tracer
      .startSpan(tool ? 'execute_tool search' : 'chat gpt-4o-mini', {
        attributes: tool
          ? { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search', 'agent.run.id': runId }
          : {
              'gen_ai.operation.name': 'chat',
              'gen_ai.provider.name': 'openai',
              'gen_ai.request.model': 'gpt-4o-mini',
              'gen_ai.usage.input_tokens': 900 + i,
              'gen_ai.usage.output_tokens': 120,
              'agent.run.id': runId,
            },
      })
      .end();
  }
  const spans = finished();
  const raw = Buffer.from(spec.encoding === 'protobuf' ? ProtobufTraceSerializer.serializeRequest(spans)! : JsonTraceSerializer.serializeRequest(spans)!);
  const idOffsets = spans.map((span) => {
    const id = span.spanContext().spanId;
    const at = spec.encoding === 'protobuf' ? raw.indexOf(Buffer.from(id, 'hex')) : raw.indexOf(`"${id}"`) + 1;
    if (at <= 0) throw new Error(`span id ${id} not found in its payload`);
    return at;
  });
  const runOffsets: number[] = [];
  for (let at = raw.indexOf(RUN_TOKEN); spec.freshRuns && at >= 0; at = raw.indexOf(RUN_TOKEN, at + RUN_TOKEN.length)) runOffsets.push(at);
  return { raw, encoding: spec.encoding, gzip: spec.gzip, idOffsets, runOffsets };
}

/** Send `n` of a template: its span ids XORed with n + 1 (distinct for every n), compressed if the template is. */
export function freshPayload(template: PayloadTemplate, n: number): Buffer {
  const body = Buffer.from(template.raw);
  const mask = (n + 1) >>> 0;
  for (const at of template.idOffsets) {
    if (template.encoding === 'protobuf') body.writeUInt32BE((body.readUInt32BE(at) ^ mask) >>> 0, at);
    else body.write(((parseInt(body.toString('latin1', at, at + 8), 16) ^ mask) >>> 0).toString(16).padStart(8, '0'), at, 'latin1');
  }
  const run = mask.toString(16).padStart(8, '0');
  for (const at of template.runOffsets) body.write(run, at, 'latin1');
  return template.gzip ? gzipSync(body, { level: 1 }) : body;
}

/** Distinct templates (tenants and runs vary) so the server does real work, not cached work. */
export function buildPayloads(spec: PayloadSpec, distinct: number): PayloadTemplate[] {
  return Array.from({ length: distinct }, (_, p) => payloadTemplate(spec, p));
}
