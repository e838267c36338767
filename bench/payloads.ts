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
}

/** Request `p` of a run: chat calls with usage and tool calls, a tenant and runs of their own. */
export function buildPayload(spec: PayloadSpec, p: number): Buffer {
  const raw = rawPayload(spec, p);
  return spec.gzip ? gzipSync(raw) : raw;
}

export function rawPayload(spec: Pick<PayloadSpec, 'encoding' | 'spansPerRequest' | 'tenants' | 'tenantPrefix'>, p: number): Buffer {
  const { tracer, finished } = recordingTracer({ 'service.name': 'bench-agent', 'tenant.id': `${spec.tenantPrefix ?? 'tenant-'}${p % spec.tenants}` });
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
  return Buffer.from(spec.encoding === 'protobuf' ? ProtobufTraceSerializer.serializeRequest(spans)! : JsonTraceSerializer.serializeRequest(spans)!);
}

/** Distinct payloads (tenants and runs vary) so the server does real work, not cached work. */
export function buildPayloads(spec: PayloadSpec, distinct: number): Buffer[] {
  return Array.from({ length: distinct }, (_, p) => buildPayload(spec, p));
}
