import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { HrTime } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { ExportResultCode, exportSpans, otlpExporter, recordingTracer, type WireEncoding } from '../helpers/otel.js';
import { startTestService, tempDataDir } from '../helpers/service.js';

interface StoredSpan {
  TenantId: string;
  RunId: string;
  TraceId: string;
  SpanId: string;
  ParentSpanId: string;
  TraceState: string;
  SpanName: string;
  SpanKind: string;
  ServiceName: string;
  ScopeName: string;
  ScopeVersion: string;
  StartNs: string;
  EndNs: string;
  DurationNs: string;
  StatusCode: string;
  StatusMessage: string;
  ResourceAttributes: Record<string, string>;
  SpanAttributes: Record<string, string>;
  SpanAttributeTypes: Record<string, string>;
  EventNames: string[];
  EventNs: string[];
  EventAttributes: Record<string, string>[];
  EventAttributeTypes: Record<string, string>[];
  LinkTraceIds: string[];
  LinkSpanIds: string[];
  LinkAttributes: Record<string, string>[];
  Operation: string;
  Provider: string;
  RequestModel: string;
  ResponseModel: string;
  ToolName: string;
  InputTokens: number;
  OutputTokens: number;
  ErrorType: string;
  IsError: boolean;
}

const SELECT_STORED = `
  SELECT TenantId, RunId, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, ScopeName, ScopeVersion,
         toString(toUnixTimestamp64Nano(StartTime)) AS StartNs, toString(toUnixTimestamp64Nano(EndTime)) AS EndNs,
         toString(DurationNs) AS DurationNs, StatusCode, StatusMessage,
         ResourceAttributes, SpanAttributes, SpanAttributeTypes,
         Events.Name AS EventNames, arrayMap(t -> toString(toUnixTimestamp64Nano(t)), Events.Timestamp) AS EventNs,
         Events.Attributes AS EventAttributes, Events.AttributeTypes AS EventAttributeTypes,
         Links.TraceId AS LinkTraceIds, Links.SpanId AS LinkSpanIds, Links.Attributes AS LinkAttributes,
         Operation, Provider, RequestModel, ResponseModel, ToolName, InputTokens, OutputTokens, ErrorType, IsError
  FROM spans WHERE TenantId = {tenant:String} AND SpanId = {span:String}`;

let service: Service;

/** HrTime to exact nanoseconds (the SDK's hrTimeToNanoseconds returns a lossy number). */
function hrNs([seconds, nanos]: HrTime): bigint {
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
}

beforeAll(async () => {
  service = await startTestService({ dataDir: tempDataDir() });
});

afterAll(async () => {
  await service?.stop();
});

/** A small agent run: a root invoke_agent span, a chat call with usage, a failing tool call with an event and a link. */
function agentRun(tenant: string, runId: string): ReadableSpan[] {
  const { tracer, finished } = recordingTracer({ 'service.name': 'support-agent', 'tenant.id': tenant });
  tracer.startActiveSpan('invoke_agent support', { kind: SpanKind.INTERNAL, attributes: { 'gen_ai.operation.name': 'invoke_agent', 'agent.run.id': runId } }, (root) => {
    const chat = tracer.startSpan('chat gpt-4o', {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.response.model': 'gpt-4o-2024-08-06',
        'gen_ai.usage.input_tokens': 1234,
        'gen_ai.usage.output_tokens': 56,
        'agent.run.id': runId,
        'custom.double': 0.25,
        'custom.negative': -42,
        'custom.bool': true,
        'custom.strings': ['a', 'b'],
        'custom.ints': [1, 2, 3],
        'custom.bools': [true, false],
      },
    });
    chat.addEvent('gen_ai.choice', { 'gen_ai.response.finish_reasons': ['stop'], index: 0 });
    chat.end();
    const tool = tracer.startSpan('execute_tool search', {
      kind: SpanKind.INTERNAL,
      attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search', 'agent.run.id': runId },
      links: [{ context: chat.spanContext(), attributes: { 'link.reason': 'follows' } }],
    });
    tool.setStatus({ code: SpanStatusCode.ERROR, message: 'search backend timed out' });
    tool.setAttribute('error.type', 'timeout');
    tool.end();
    root.end();
  });
  return finished();
}

async function storedSpan(tenant: string, spanId: string): Promise<StoredSpan | undefined> {
  const rows = await queryRows<StoredSpan>(service.store.client, SELECT_STORED, { tenant, span: spanId });
  return rows[0];
}

describe.each<[WireEncoding, boolean]>([
  ['protobuf', false],
  ['protobuf', true],
  ['json', false],
  ['json', true],
])('OTLP %s (gzip %s) from the official exporter', (encoding, gzip) => {
  it('stores every span field by field', async () => {
    const tenant = `tenant-${encoding}-${gzip ? 'gz' : 'plain'}`;
    const spans = agentRun(tenant, 'run-1');
    const result = await exportSpans(otlpExporter(service.otlpUrl, encoding, { gzip }), spans);
    expect(result.code).toBe(ExportResultCode.SUCCESS);

    for (const span of spans) {
      const stored = await storedSpan(tenant, span.spanContext().spanId);
      expect(stored, `span ${span.name} stored`).toBeDefined();
      const row = stored!;
      expect(row.TenantId).toBe(tenant);
      expect(row.RunId).toBe('run-1');
      expect(row.TraceId).toBe(span.spanContext().traceId);
      expect(row.ParentSpanId).toBe(span.parentSpanContext?.spanId ?? '');
      expect(row.SpanName).toBe(span.name);
      expect(row.SpanKind).toBe(['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'][span.kind]);
      expect(row.ServiceName).toBe('support-agent');
      expect(row.ScopeName).toBe('breakwater-test');
      expect(row.ScopeVersion).toBe('1.2.3');
      expect(row.StartNs).toBe(String(hrNs(span.startTime)));
      expect(row.EndNs).toBe(String(hrNs(span.endTime)));
      expect(BigInt(row.DurationNs)).toBe(hrNs(span.endTime) - hrNs(span.startTime));
      expect(row.ResourceAttributes['tenant.id']).toBe(tenant);
      expect(row.ResourceAttributes['service.name']).toBe('support-agent');
      expect(row.EventNames).toEqual(span.events.map((e) => e.name));
      expect(row.EventNs).toEqual(span.events.map((e) => String(hrNs(e.time))));
      expect(row.LinkSpanIds).toEqual(span.links.map((l) => l.context.spanId));
      expect(row.LinkTraceIds).toEqual(span.links.map((l) => l.context.traceId));
    }

    const chat = spans.find((s) => s.name === 'chat gpt-4o')!;
    const chatRow = (await storedSpan(tenant, chat.spanContext().spanId))!;
    expect(chatRow).toMatchObject({
      Operation: 'chat',
      Provider: 'openai',
      RequestModel: 'gpt-4o',
      ResponseModel: 'gpt-4o-2024-08-06',
      InputTokens: 1234,
      OutputTokens: 56,
      IsError: false,
      StatusCode: 'UNSET',
    });
    expect(chatRow.SpanAttributes).toMatchObject({
      'custom.double': '0.25',
      'custom.negative': '-42',
      'custom.bool': 'true',
      'custom.strings': '["a","b"]',
      'custom.ints': '[1,2,3]',
      'custom.bools': '[true,false]',
      'gen_ai.usage.input_tokens': '1234',
    });
    expect(chatRow.SpanAttributeTypes).toMatchObject({
      'custom.double': 'double',
      'custom.negative': 'int',
      'custom.bool': 'bool',
      'custom.strings': 'array',
      'gen_ai.usage.input_tokens': 'int',
    });
    expect(chatRow.SpanAttributeTypes['gen_ai.provider.name']).toBeUndefined();
    expect(chatRow.EventAttributes[0]).toEqual({ 'gen_ai.response.finish_reasons': '["stop"]', index: '0' });
    expect(chatRow.EventAttributeTypes[0]).toEqual({ 'gen_ai.response.finish_reasons': 'array', index: 'int' });

    const tool = spans.find((s) => s.name === 'execute_tool search')!;
    const toolRow = (await storedSpan(tenant, tool.spanContext().spanId))!;
    expect(toolRow).toMatchObject({
      Operation: 'execute_tool',
      ToolName: 'search',
      StatusCode: 'ERROR',
      StatusMessage: 'search backend timed out',
      ErrorType: 'timeout',
      IsError: true,
    });
    expect(toolRow.LinkAttributes).toEqual([{ 'link.reason': 'follows' }]);
  });
});

describe('the per-tenant per-minute rollup', () => {
  it('sums tokens, calls and errors per tenant and model', async () => {
    const tenant = 'tenant-rollup';
    const result = await exportSpans(otlpExporter(service.otlpUrl, 'protobuf'), [...agentRun(tenant, 'r1'), ...agentRun(tenant, 'r2')]);
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    const rows = await queryRows<{ Model: string; Spans: number; ModelCalls: number; ToolCalls: number; Errors: number; InputTokens: number; Runs: number }>(
      service.store.client,
      `SELECT Model, sum(Spans) AS Spans, sum(ModelCalls) AS ModelCalls, sum(ToolCalls) AS ToolCalls, sum(Errors) AS Errors,
              sum(InputTokens) AS InputTokens, uniqMerge(Runs) AS Runs
       FROM spans_tenant_minute WHERE TenantId = {tenant:String} GROUP BY Model ORDER BY Model`,
      { tenant },
    );
    const byModel = Object.fromEntries(rows.map((r) => [r.Model, r]));
    expect(Number(byModel['gpt-4o-2024-08-06']?.ModelCalls)).toBe(2);
    expect(Number(byModel['gpt-4o-2024-08-06']?.InputTokens)).toBe(2468);
    expect(Number(byModel['']?.ToolCalls)).toBe(2);
    expect(Number(byModel['']?.Errors)).toBe(2);
    expect(Number(byModel['']?.Runs)).toBe(2);
    expect(rows.reduce((n, r) => n + Number(r.Spans), 0)).toBe(6);
  });
});

describe('the decision path failing', () => {
  it('stores and acknowledges the spans of a batch an observer threw on, and later observers still see it', async () => {
    const seen: string[] = [];
    service.pipeline.addObserver({
      observe(spans) {
        if (spans[0]?.tenantId === 'tenant-boom') throw new Error('observer bug');
      },
    });
    service.pipeline.addObserver({ observe: (spans) => void seen.push(spans[0]!.tenantId) });
    const result = await exportSpans(otlpExporter(service.otlpUrl, 'protobuf'), agentRun('tenant-boom', 'r1'));
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    expect(seen).toEqual(['tenant-boom']);
    const rows = await queryRows<{ n: string }>(service.store.client, "SELECT toString(count()) AS n FROM spans WHERE TenantId = 'tenant-boom'");
    expect(rows[0]?.n).toBe('3');
  });
});
