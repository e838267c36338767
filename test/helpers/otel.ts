import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanLimits,
} from '@opentelemetry/sdk-trace-base';
import type { Attributes, Tracer } from '@opentelemetry/api';

export type WireEncoding = 'protobuf' | 'json';

/** A real tracer whose finished spans are collected in memory, to be exported explicitly. */
export function recordingTracer(resource: Attributes, spanLimits?: SpanLimits): { tracer: Tracer; finished: () => ReadableSpan[]; provider: BasicTracerProvider } {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(resource),
    ...(spanLimits ? { spanLimits } : {}),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  return { tracer: provider.getTracer('breakwater-test', '1.2.3'), finished: () => memory.getFinishedSpans(), provider };
}

export function otlpExporter(
  otlpUrl: string,
  encoding: WireEncoding,
  options: { gzip?: boolean; headers?: Record<string, string> } = {},
): SpanExporter {
  const config = {
    url: `${otlpUrl}/v1/traces`,
    ...(options.gzip ? { compression: 'gzip' as never } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  };
  return encoding === 'protobuf' ? new ProtoExporter(config) : new JsonExporter(config);
}

/** Exports spans through the official exporter; resolves with its ExportResult. */
export function exportSpans(exporter: SpanExporter, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

export { ExportResultCode };
