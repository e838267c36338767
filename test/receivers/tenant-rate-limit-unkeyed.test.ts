// Without ingest keys the tenant comes from the spans' resources: a tenant refused for its rate
// is refused again by its resources' tenant.id before its spans are decoded (protobuf).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { startTestService, tempDataDir } from '../helpers/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
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

/** A protobuf request whose one resource has these attributes (in order) and `spans` valid spans. */
function requestWithResource(attributes: Array<[string, { text: string } | { int: number }]>, spans: number, seed: number): Uint8Array<ArrayBuffer> {
  const varint = (n: number) => {
    const out: number[] = [];
    for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
    return [...out, n];
  };
  const len = (field: number, payload: number[]) => [(field << 3) | 2, ...varint(payload.length), ...payload];
  const text = (s: string) => [...Buffer.from(s)];
  const fixed64 = (field: number, value: bigint) => [(field << 3) | 1, ...Buffer.from(new BigUint64Array([value]).buffer)];
  const keyValues = attributes.flatMap(([key, value]) =>
    len(1, [...len(1, text(key)), ...len(2, 'text' in value ? len(1, text(value.text)) : [(3 << 3) | 0, ...varint(value.int)])]),
  );
  const now = BigInt(Date.now()) * 1_000_000n;
  const spanBytes = Array.from({ length: spans }, (_, i) =>
    len(2, [
      ...len(1, [...Buffer.alloc(12, 1), ...Buffer.from(new Uint32Array([seed + 1]).buffer)]),
      ...len(2, [...Buffer.alloc(4, 2), ...Buffer.from(new Uint32Array([i + 1]).buffer)]),
      ...len(5, text('execute_tool x')),
      ...fixed64(7, now),
      ...fixed64(8, now + 1_000_000n),
    ]),
  ).flat();
  return new Uint8Array(len(1, [...len(1, keyValues), ...len(2, spanBytes)]));
}

describe('the tenant a request is charged to', () => {
  it("is the one its spans are stored under: the resource's last tenant.id, as text", async () => {
    const stored = async (tenant: string) =>
      Number((await queryRows<{ n: string }>(service.store.client, 'SELECT toString(count()) AS n FROM spans WHERE TenantId = {t:String}', { t: tenant }))[0]!.n);
    // two tenant.id attributes: the spans land in the second tenant's table rows, so its bucket pays
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(requestWithResource([['tenant.id', { text: 'decoy' }], ['tenant.id', { text: 'dup-flooder' }]], 40, i))).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect(await stored('dup-flooder')).toBe(80);
    expect(await stored('decoy')).toBe(0);
    // the decoy's bucket was not spent
    expect((await post(requestWithResource([['tenant.id', { text: 'decoy' }]], 40, 10))).status).toBe(200);
    // an integer tenant.id is the tenant of its text form, for the limit as for storage
    const numeric: number[] = [];
    for (let i = 0; i < 4; i++) numeric.push((await post(requestWithResource([['tenant.id', { int: 4242 }]], 40, 20 + i))).status);
    expect(numeric).toEqual([200, 200, 429, 429]);
    expect(await stored('4242')).toBe(80);
  });
});

