import { connect, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExportTraceServiceResponseType } from '../../src/codecs/otlp-proto-schema.js';
import type { Service } from '../../src/app/service.js';
import { queryRows } from '../../src/storage/clickhouse.js';
import { recordingTracer } from '../helpers/otel.js';
import { startTestService, tempDataDir } from '../helpers/service.js';

const MAX_BODY = 256 * 1024;
const HEADERS_TIMEOUT = 400;
const REQUEST_TIMEOUT = 1_200;
let service: Service;

beforeAll(async () => {
  service = await startTestService({ dataDir: tempDataDir(), maxBodyBytes: MAX_BODY, headersTimeoutMs: HEADERS_TIMEOUT, requestTimeoutMs: REQUEST_TIMEOUT });
});

afterAll(async () => {
  await service?.stop();
});

function post(body: Uint8Array | string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${service.otlpUrl}/v1/traces`, { method: 'POST', headers, body: typeof body === 'string' ? body : Buffer.from(body) });
}

const PROTO = { 'content-type': 'application/x-protobuf' };
const JSON_TYPE = { 'content-type': 'application/json' };

/** Real protobuf bytes from the official serializer. */
function protobufBody(tenant: string | undefined, count = 3, attributes: Record<string, string> = {}): Uint8Array {
  const { tracer, finished } = recordingTracer(tenant === undefined ? {} : { 'tenant.id': tenant });
  for (let i = 0; i < count; i++) tracer.startSpan(`step ${i}`, { attributes }).end();
  return ProtobufTraceSerializer.serializeRequest(finished())!;
}

/** The google.rpc.Status of a JSON error response. */
async function statusOf(res: Response): Promise<{ code: number; message: string }> {
  return (await res.json()) as { code: number; message: string };
}

async function storedCount(tenant: string): Promise<number> {
  const rows = await queryRows<{ n: string }>(service.store.client, 'SELECT toString(count()) AS n FROM spans WHERE TenantId = {tenant:String}', { tenant });
  return Number(rows[0]?.n);
}

describe('malformed, oversized and hostile OTLP bodies', () => {
  beforeAll(async () => {
    const res = await post(protobufBody('survivor', 5), PROTO);
    expect(res.status).toBe(200);
  });

  afterAll(async () => {
    // Nothing that was accepted before the abuse is lost, and the server still answers.
    expect(await storedCount('survivor')).toBe(5);
    expect((await fetch(`${service.otlpUrl}/healthz`)).status).toBe(200);
    expect((await post(protobufBody('survivor', 1), PROTO)).status).toBe(200);
  });

  it('answers 415 for another content type, naming the accepted ones', async () => {
    const res = await post('hello', { 'content-type': 'text/plain' });
    expect(res.status).toBe(415);
    expect((await statusOf(res)).message).toMatch(/application\/x-protobuf or application\/json/);
  });

  it('answers 415 for an unsupported content encoding', async () => {
    const res = await post(protobufBody('t'), { ...PROTO, 'content-encoding': 'br' });
    expect(res.status).toBe(415);
  });

  it('answers 405 to GET', async () => {
    expect((await fetch(`${service.otlpUrl}/v1/traces`, { headers: PROTO })).status).toBe(405);
  });

  it('answers 400 with a google.rpc.Status for truncated protobuf', async () => {
    const body = protobufBody('t');
    const res = await post(body.subarray(0, body.length - 7), PROTO);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    const text = Buffer.from(await res.arrayBuffer()).toString('latin1');
    expect(text).toMatch(/undecodable OTLP protobuf body/);
  });

  it('answers 400 for random bytes', async () => {
    const junk = new Uint8Array(4096).map((_, i) => (i * 7919 + 13) % 256);
    expect((await post(junk, PROTO)).status).toBe(400);
  });

  it.each([
    ['not JSON', '{"resourceSpans": ['],
    ['a wrong type', '{"resourceSpans": {"a": 1}}'],
    ['a non-hex trace id', '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708"}]}]}]}'],
    ['a string time that is not a number', '{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}'],
  ])('answers 400 for JSON with %s, saying where', async (_, body) => {
    const res = await post(body, JSON_TYPE);
    expect(res.status).toBe(400);
    const status = await statusOf(res);
    expect(status.code).toBe(3);
    expect(status.message).toMatch(/undecodable OTLP json body/);
  });

  it('answers 400 for invalid UTF-8 in JSON', async () => {
    const bytes = Buffer.concat([Buffer.from('{"resourceSpans":[],"x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expect((await post(bytes, JSON_TYPE)).status).toBe(400);
  });

  it('answers 400 for AnyValue nested past the limit', async () => {
    let value = '{"stringValue":"deep"}';
    for (let i = 0; i < 200; i++) value = `{"arrayValue":{"values":[${value}]}}`;
    const body = `{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":${value}}]},"scopeSpans":[]}]}`;
    const res = await post(body, JSON_TYPE);
    expect(res.status).toBe(400);
    expect((await statusOf(res)).message).toMatch(/nested deeper/);
  });

  it('answers 413 for a body over the limit, naming the limit and the flag that raises it', async () => {
    const res = await post(new Uint8Array(MAX_BODY + 1), JSON_TYPE);
    expect(res.status).toBe(413);
    const { message } = await statusOf(res);
    expect(message).toContain(`${MAX_BODY}-byte limit`);
    expect(message).toMatch(/--max-body-bytes \(BREAKWATER_MAX_BODY_BYTES\)/);
  });

  it('answers 413 for a gzip bomb, checked on the decompressed size', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(MAX_BODY);
    const res = await post(bomb, { ...PROTO, 'content-encoding': 'gzip' });
    expect(res.status).toBe(413);
    expect(Buffer.from(await res.arrayBuffer()).toString('latin1')).toMatch(/decompressed body is over the \d+-byte limit; raise it with --max-body-bytes/);
  });

  it('answers 400 for a corrupt gzip body', async () => {
    expect((await post(Buffer.from('not gzip at all'), { ...PROTO, 'content-encoding': 'gzip' })).status).toBe(400);
  });

  it('stores a large attribute value intact when the body is within the limit', async () => {
    const big = 'x'.repeat(200 * 1024);
    const res = await post(protobufBody('big-attr', 1, { 'big.value': big }), PROTO);
    expect(res.status).toBe(200);
    const rows = await queryRows<{ n: string }>(service.store.client, "SELECT toString(length(SpanAttributes['big.value'])) AS n FROM spans WHERE TenantId = 'big-attr'");
    expect(Number(rows[0]?.n)).toBe(big.length);
  });
});

describe('partial success', () => {
  it('rejects spans without tenant.id, counting them with a reason, and keeps the rest', async () => {
    const withTenant = protobufBody('partial', 2);
    const withoutTenant = protobufBody(undefined, 3);
    // Two requests' worth of resource spans in one: concatenated protobuf messages merge their repeated fields.
    const res = await post(Buffer.concat([withTenant, withoutTenant]), PROTO);
    expect(res.status).toBe(200);
    const response = ExportTraceServiceResponseType.decode(new Uint8Array(await res.arrayBuffer())) as unknown as {
      partialSuccess: { rejectedSpans: { toString(): string }; errorMessage: string };
    };
    expect(String(response.partialSuccess.rejectedSpans)).toBe('3');
    expect(response.partialSuccess.errorMessage).toMatch(/3 span\(s\) rejected: missing tenant.id/);
    expect(await storedCount('partial')).toBe(2);
  });

  it('answers JSON partial_success to a JSON request', async () => {
    const body = JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [] },
          scopeSpans: [{ spans: [{ traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0102030405060708', name: 'x', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }],
        },
      ],
    });
    const res = await post(body, JSON_TYPE);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ partialSuccess: { rejectedSpans: '1', errorMessage: expect.stringMatching(/missing tenant.id/) } });
  });

  it('answers an empty ExportTraceServiceResponse when everything was accepted', async () => {
    const res = await post(protobufBody('all-good'), PROTO);
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });
});

describe('operability', () => {
  it('is ready once storage is migrated, and exposes Prometheus metrics', async () => {
    const ready = await fetch(`${service.graphqlUrl}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${service.otlpUrl}/metrics`)).text();
    expect(metrics).toMatch(/breakwater_spans_accepted_total \d+/);
    expect(metrics).toMatch(/breakwater_spans_rejected_total\{reason="invalid"\} \d+/);
    expect(metrics).toMatch(/breakwater_write_queue_spans 0/);
    expect(metrics).toMatch(/breakwater_flush_duration_seconds_bucket/);
    expect(metrics).toMatch(/breakwater_otlp_requests_total\{status="413"\}/);
  });

  it('answers 404 elsewhere', async () => {
    expect((await fetch(`${service.otlpUrl}/v1/metrics`, { method: 'POST' })).status).toBe(404);
  });
});

/** A raw connection that sends `head` and then what `trickle` gives, one piece every 100 ms. */
function slowClient(url: string, head: string, trickle?: () => string): Promise<{ answer: string; closedAfterMs: number }> {
  const { hostname, port } = new URL(url);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(Number(port), hostname, () => socket.write(head));
    let answer = '';
    const timer = trickle ? setInterval(() => socket.writable && socket.write(trickle()), 100) : undefined;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', () => {}); // a reset after the 408 is the server closing, as asked
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
    socket.setTimeout(15_000, () => {
      clearInterval(timer);
      socket.destroy();
      reject(new Error(`the server kept a slow client open for 15 s (got ${JSON.stringify(answer)})`));
    });
  });
}

describe('slow clients', () => {
  it('cuts a client that never finishes its headers with 408, on both ports', async () => {
    for (const url of [service.otlpUrl, service.graphqlUrl]) {
      const { answer, closedAfterMs } = await slowClient(url, 'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n');
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT - 50);
    }
  });

  it('cuts a client that trickles its body past the request timeout, storing nothing of it', async () => {
    const body = Buffer.from(protobufBody('trickler', 2));
    let sent = 0;
    const { answer, closedAfterMs } = await slowClient(
      service.otlpUrl,
      `POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length + 1000}\r\n\r\n`,
      () => (sent < body.length ? body.subarray(sent, ++sent).toString('latin1') : '\0'),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT - 50);
    expect(await storedCount('trickler')).toBe(0);
  });

  it('keeps serving other clients while many slow ones hang', async () => {
    const stalled = Array.from({ length: 50 }, () => slowClient(service.otlpUrl, 'POST /v1/traces HTTP/1.1\r\nHost: x\r\n'));
    const res = await post(protobufBody('patient', 3), PROTO);
    expect(res.status).toBe(200);
    const cut = await Promise.all(stalled);
    expect(cut.every(({ answer }) => answer.startsWith('HTTP/1.1 408 '))).toBe(true);
    expect(await storedCount('patient')).toBe(3);
  });
});
