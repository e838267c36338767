// Attribute-heavy requests over HTTP, against the real receiver and embedded ClickHouse: one span
// with 100,000 attributes is stored capped (the GenAI attributes kept, the rest counted as
// dropped); one large resource over 2,000 spans is refused past the request's attribute budget in
// partial_success. Another tenant sending at the same time has every span accepted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { ExportTraceServiceResponseType, referenceEncode } from '../../src/codecs/otlp-proto-schema.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { recordingTracer } from '../helpers/otel.js';
import { counterValue, startTestService, tempDataDir } from '../helpers/service.js';
import { attrs, filler, modelRequest, modelSpan } from '../helpers/otlp-model.js';
import { postSpans, runSteps } from '../helpers/spans.js';

interface PartialSuccess {
  rejectedSpans?: { toString(): string };
  errorMessage?: string;
}

async function partialSuccess(res: Response): Promise<PartialSuccess> {
  const decoded = ExportTraceServiceResponseType.decode(new Uint8Array(await res.arrayBuffer())) as unknown as { partialSuccess?: PartialSuccess };
  return decoded.partialSuccess ?? {};
}

describe('attribute-heavy requests, over HTTP', () => {
  let service: Service;

  beforeAll(async () => {
    service = await startTestService({ dataDir: tempDataDir() });
  });

  afterAll(async () => {
    await service?.stop();
  });

  it("are capped or refused with a reason while another tenant's spans are all accepted", async () => {
    const tenant = attrs({ 'tenant.id': 'hostile', 'service.name': 'flood' });
    const wide = modelSpan([...filler(100_000), ...attrs({ 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 900n, 'agent.run.id': 'wide' })]);
    const amplified = modelRequest([...tenant, ...filler(100, 'k8s', 'v'.repeat(1_000))], Array.from({ length: 2_000 }, () => modelSpan(attrs({ 'agent.run.id': 'amp' }))));
    const hostile = [postSpans(service.otlpUrl, referenceEncode(modelRequest(tenant, [wide]))), postSpans(service.otlpUrl, referenceEncode(amplified))];
    const others = Array.from({ length: 10 }, (_, i) => postSpans(service.otlpUrl, runSteps('bystander', `b${i}`, [{ model: 'gpt-4o' }, { tool: 'search' }])));
    const [wideRes, amplifiedRes, ...otherRes] = await Promise.all([...hostile, ...others]);

    for (const res of otherRes) {
      expect(res!.status).toBe(200);
      expect(await partialSuccess(res!)).toEqual({});
    }
    const bystander = await queryRows<{ n: string }>(service.store.client, "SELECT toString(count()) AS n FROM spans WHERE TenantId = 'bystander'");
    expect(Number(bystander[0]!.n)).toBe(20);

    expect(wideRes!.status).toBe(200);
    expect(await partialSuccess(wideRes!)).toEqual({});
    const [stored] = await queryRows<{ keys: string; dropped: string; model: string; tokens: string }>(
      service.store.client,
      "SELECT toString(length(SpanAttributes)) AS keys, toString(DroppedAttributesCount) AS dropped, RequestModel AS model, toString(InputTokens) AS tokens FROM spans WHERE RunId = 'wide'",
    );
    expect(stored).toEqual({ keys: String(128 + 4), dropped: String(100_000 - 128), model: 'gpt-4o', tokens: '900' });

    expect(amplifiedRes!.status).toBe(200);
    const refused = await partialSuccess(amplifiedRes!);
    const kept = await queryRows<{ n: string }>(service.store.client, "SELECT toString(count()) AS n FROM spans WHERE RunId = 'amp'");
    expect(Number(kept[0]!.n)).toBeGreaterThan(0);
    expect(Number(refused.rejectedSpans?.toString())).toBe(2_000 - Number(kept[0]!.n));
    expect(refused.errorMessage).toMatch(/span\(s\) rejected: over the request's attribute limit .* a resource's counted once per span/);

    const metrics = await (await fetch(`${service.otlpUrl}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`breakwater_attributes_dropped_total ${100_000 - 128}\\b`));
    expect(metrics).toMatch(/breakwater_spans_rejected_total\{reason="attribute_budget"\} [1-9]/);
  });

  it("counts and stores what the sender's own attribute limit dropped, apart from Breakwater's", async () => {
    // A real SDK at its default 128-attribute limit, as OpenInference fills it: the token counts set
    // after 150 flattened messages are dropped by the sender, before Breakwater sees the span.
    const { tracer, finished } = recordingTracer({ 'tenant.id': 'oi-js', 'service.name': 'agent' }, { attributeCountLimit: 128 });
    const span = tracer.startSpan('ChatCompletion', { attributes: { 'openinference.span.kind': 'LLM', 'llm.model_name': 'gpt-4o-mini', 'agent.run.id': 'oi' } });
    for (let i = 0; i < 150; i++) span.setAttribute(`llm.input_messages.${i}.message.content`, 'hi');
    span.setAttributes({ 'llm.token_count.prompt': 900, 'llm.token_count.completion': 40 });
    span.end();
    const before = await counterValue(service, 'breakwater_sender_dropped_attributes_total');
    // The first test's 99,872 drops were Breakwater's own, not the sender's.
    expect(before).toBe(0);
    const ownBefore = await counterValue(service, 'breakwater_attributes_dropped_total');
    expect((await postSpans(service.otlpUrl, ProtobufTraceSerializer.serializeRequest(finished())!)).status).toBe(200);
    const sent = 3 + 150 + 2;
    expect(await counterValue(service, 'breakwater_sender_dropped_attributes_total')).toBe(before + sent - 128);
    expect(await counterValue(service, 'breakwater_attributes_dropped_total')).toBe(ownBefore);
    const [stored] = await queryRows<{ dropped: string; tokens: string }>(service.store.client, "SELECT toString(DroppedAttributesCount) AS dropped, toString(InputTokens) AS tokens FROM spans WHERE RunId = 'oi'");
    expect(stored).toEqual({ dropped: String(sent - 128), tokens: '0' });
  });
});
