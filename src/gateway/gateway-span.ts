// One gateway call as the span an instrumented client would have sent (GenAI semantic-convention
// names), handed to the ingest pipeline directly: stored, windowed and judged like any OTLP span.

import { randomBytes } from 'node:crypto';
import type { KeyValue, OtlpTraceRequest } from '../codecs/otlp-model.js';
import type { ProviderApi } from './provider-api.js';

export interface GatewayCall {
  tenantId: string;
  /** '' when the request named none: the span's trace is then its run */
  runId: string;
  api: ProviderApi;
  operation: string;
  requestModel: string;
  responseModel: string;
  inputTokens: number;
  outputTokens: number;
  finishReasons: string[];
  /** 0 when no answer came */
  status: number;
  /** the provider's error type or code, or the failure ('timeout', 'connection') */
  errorType: string;
  /** upstream rate-limit headers, by lower-case name */
  rateLimitHeaders: Record<string, string>;
  startMs: number;
  endMs: number;
  /** the gateway rewrote the model to the decision's fallback */
  degradedFrom?: string;
}

const NS_PER_MS = 1_000_000n;

export function gatewaySpanRequest(call: GatewayCall): OtlpTraceRequest {
  const attributes: KeyValue[] = [
    { key: 'gen_ai.operation.name', value: call.operation },
    { key: 'gen_ai.provider.name', value: call.api },
    { key: 'gen_ai.request.model', value: call.requestModel },
    { key: 'breakwater.gateway', value: true },
  ];
  if (call.runId !== '') attributes.push({ key: 'agent.run.id', value: call.runId });
  if (call.responseModel !== '') attributes.push({ key: 'gen_ai.response.model', value: call.responseModel });
  if (call.inputTokens > 0) attributes.push({ key: 'gen_ai.usage.input_tokens', value: call.inputTokens });
  if (call.outputTokens > 0) attributes.push({ key: 'gen_ai.usage.output_tokens', value: call.outputTokens });
  if (call.finishReasons.length > 0) attributes.push({ key: 'gen_ai.response.finish_reasons', value: call.finishReasons });
  if (call.status !== 0) attributes.push({ key: 'http.response.status_code', value: call.status });
  if (call.errorType !== '') attributes.push({ key: 'error.type', value: call.errorType });
  if (call.degradedFrom !== undefined) attributes.push({ key: 'breakwater.degraded_from', value: call.degradedFrom });
  for (const [name, value] of Object.entries(call.rateLimitHeaders)) attributes.push({ key: `http.response.header.${name}`, value: [value] });
  const failed = call.errorType !== '' || call.status >= 400 || call.status === 0;
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'tenant.id', value: call.tenantId }, { key: 'service.name', value: 'breakwater-gateway' }], droppedAttributesCount: 0 },
        scopeSpans: [
          {
            scope: { name: 'breakwater.gateway', version: '', attributes: [], droppedAttributesCount: 0 },
            spans: [
              {
                traceId: randomBytes(16).toString('hex'),
                spanId: randomBytes(8).toString('hex'),
                traceState: '',
                parentSpanId: '',
                flags: 1,
                name: `${call.operation} ${call.requestModel}`.trim(),
                kind: 3,
                startTimeUnixNano: BigInt(Math.floor(call.startMs)) * NS_PER_MS,
                endTimeUnixNano: BigInt(Math.floor(call.endMs)) * NS_PER_MS,
                attributes,
                droppedAttributesCount: 0,
                events: [],
                droppedEventsCount: 0,
                links: [],
                droppedLinksCount: 0,
                status: { code: failed ? 2 : 0, message: failed ? call.errorType : '' },
              },
            ],
            schemaUrl: '',
          },
        ],
        schemaUrl: '',
      },
    ],
  };
}
