// Without ingest keys the tenant comes from the spans' resources: a tenant refused for its rate
// is refused again by its resources' tenant.id before its spans are decoded (protobuf).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { postSpans, runSteps } from '../helpers/spans.js';

let service: Service;

beforeAll(async () => {
  service = await startTestService({ dataDir: tempDataDir(), tenantIngestRate: 20 });
});

afterAll(async () => {
  await service?.stop();
});

/** ExportTraceServiceRequest with one resource (tenant.id = tenant) whose scope_spans field holds bytes that do not decode. */
function undecodableSpansOf(tenant: string): Uint8Array<ArrayBuffer> {
  const text = (s: string) => [...Buffer.from(s)];
  const len = (field: number, payload: number[]) => [(field << 3) | 2, payload.length, ...payload];
  const keyValue = len(1, [...len(1, text('tenant.id')), ...len(2, len(1, text(tenant)))]);
  return new Uint8Array(len(1, [...len(1, keyValue), ...len(2, [0xff, 0xff, 0xff])]));
}

const post = (body: Uint8Array<ArrayBuffer>) => fetch(`${service.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });

describe('an unkeyed noisy neighbour', () => {
  it('is refused by its resource tenant.id without its spans being decoded; others are decoded as usual', async () => {
    // Before any refusal, the undecodable body is decoded and answered 400.
    expect((await post(undecodableSpansOf('unkeyed-flooder'))).status).toBe(400);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await postSpans(service.otlpUrl, runSteps('unkeyed-flooder', 'f', Array.from({ length: 40 }, () => ({ tool: 'x' }))))).status);
    expect(statuses.at(-1)).toBe(429);
    const refused = await post(undecodableSpansOf('unkeyed-flooder'));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await post(undecodableSpansOf('unkeyed-quiet'))).status).toBe(400);
    expect((await postSpans(service.otlpUrl, runSteps('unkeyed-quiet', 'q', [{ tool: 'x' }]))).status).toBe(200);
  });
});
