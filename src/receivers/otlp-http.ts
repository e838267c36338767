import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import type { AuthFailureLimiter } from '../api/auth.js';
import type { SelfMetrics } from '../app/self-metrics.js';
import { decodeTraceRequestJson } from '../codecs/decode-json.js';
import { decodeTraceRequestProtobuf, peekResources } from '../codecs/decode-protobuf.js';
import { droppedAttributeCounts } from '../codecs/dropped-counts.js';
import { resourceTenant } from '../normalize/normalize.js';
import { OtlpDecodeError, type OtlpTraceRequest } from '../codecs/otlp-model.js';
import type { AttributeLimits } from '../codecs/attribute-limits.js';
import { errorStatus, exportResponse, type EncodedBody, type OtlpEncoding } from '../codecs/otlp-responses.js';
import type { IngestOutcome, IngestPipeline } from '../app/pipeline.js';
import type { IngestRefusalReason, TenantIngestLimiter } from './tenant-rate-limit.js';
import type { RefusalLog } from '../app/refusal-log.js';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

export interface ReceiverOptions {
  maxBodyBytes: number;
  /**
   * Resolves the tenant an ingest key is bound to. Returns undefined for an unknown key;
   * `null` when ingest keys are not configured (spans then name their own tenant).
   */
  tenantForKey?: (key: string | undefined) => string | undefined | null;
  /** per-tenant span rate limit (429 with Retry-After on the flooding tenant's own requests) */
  limiter?: TenantIngestLimiter;
  /** says in the log which tenant the limiter refused */
  refusals?: Pick<RefusalLog, 'refused'>;
  /** refuses an address that keeps presenting bad ingest keys */
  authFailures?: AuthFailureLimiter;
  /** attribute counts kept per span, resource, scope, event and link; the rest dropped while decoding */
  attributeLimits?: AttributeLimits;
  /** failures that are Breakwater's fault (answered 500 without details) */
  onInternalError?: (error: unknown) => void;
}

/** An HTTP failure with the status and message the OTLP spec asks for. */
export class ReceiverError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/**
 * OTLP/HTTP trace receiver (POST /v1/traces), answering as the OTLP/HTTP spec says:
 * 200 + ExportTraceServiceResponse (partial_success when spans were rejected), 400 undecodable,
 * 413 too large (compressed or decompressed), 415 unsupported type or encoding, 429/503 with
 * Retry-After when it cannot take the spans now. Every body is in the request's encoding.
 */
export function createTraceReceiver(pipeline: IngestPipeline, metrics: SelfMetrics, options: ReceiverOptions) {
  return async function handleTraces(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = performance.now();
    // An unknown content type has no encoding of its own to answer in; JSON is the readable one.
    let encoding: OtlpEncoding = 'json';
    try {
      encoding = requestEncoding(req.headers['content-type']);
      if (req.method !== 'POST') throw new ReceiverError(405, 'use POST');
      const address = req.socket.remoteAddress ?? 'unknown';
      const key = ingestKey(req);
      if (options.authFailures?.blocked(address, key)) throw new ReceiverError(429, 'too many failed authentications; retry later', 60);
      let keyTenant: string | undefined;
      try {
        keyTenant = authenticate(key, options);
        if (keyTenant !== undefined) options.authFailures?.succeed(address, key);
      } catch (err) {
        options.authFailures?.fail(address);
        throw err;
      }
      // A tenant refused for its rate a moment ago is refused again before its spans are decoded:
      // by its ingest key before the body is read, or by the resources' tenant.id (protobuf).
      if (keyTenant !== undefined) refuseIfLimited([keyTenant]);
      const outcome = await receive(req, encoding, keyTenant, receivedAt);
      if (outcome.kind === 'retry') throw new ReceiverError(outcome.status, outcome.message, outcome.retryAfterSeconds);
      send(res, 200, exportResponse(encoding, outcome.rejected, outcome.errorMessage));
      metrics.requests.inc({ status: '200' });
    } catch (err) {
      const failure = asReceiverError(err);
      if (failure.status === 500) options.onInternalError?.(err);
      metrics.requests.inc({ status: String(failure.status) });
      if (failure.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(failure.retryAfterSeconds));
      // The body may still be streaming in; close the connection instead of reading it all.
      if (failure.status === 413 || !req.complete) res.setHeader('Connection', 'close');
      send(res, failure.status, errorStatus(encoding, failure.status, failure.message));
      if (!req.complete) req.resume();
    }
  };

  /**
   * Reads, decodes and admits the body; resolves when its spans are committed. The body and the
   * decoded request are locals of this function alone, which has returned by the time the commit
   * is awaited: an async frame keeps its locals until it resumes, and a request's decoded spans
   * held for the whole insert (~100 ms, 64 requests at a time) survived young-generation GCs,
   * which then took 12 ms each (measured at half the maximum load) and were promoted for the
   * expensive full GCs.
   */
  async function receive(req: IncomingMessage, encoding: OtlpEncoding, keyTenant: string | undefined, receivedAt: number): Promise<IngestOutcome> {
    const body = await readBody(req, options.maxBodyBytes);
    const decoded = await decompress(body, req.headers['content-encoding'], options.maxBodyBytes);
    if (keyTenant === undefined && encoding === 'protobuf' && options.limiter) refuseIfLimited(peekResources(decoded, options.attributeLimits)?.map(resourceTenant) ?? []);
    const request = decode(decoded, encoding, options.attributeLimits);
    if (request.droppedAttributes) metrics.attributesDropped.inc(request.droppedAttributes);
    // The decoder added its own drops to the counts it read: the rest are the sender's.
    const senderDropped = droppedAttributeCounts(request) - (request.droppedAttributes ?? 0);
    if (senderDropped > 0) metrics.senderAttributesDropped.inc(senderDropped);
    const spans = countSpans(request);
    metrics.spansReceived.inc({ encoding }, spans);
    const refusal = options.limiter?.admit(spansByTenant(request, keyTenant));
    if (refusal) {
      metrics.spansRejected.inc({ reason: refusal.reason }, spans);
      metrics.ingestRequestsRefused.inc({ reason: refusal.reason });
      options.refusals?.refused(refusal.tenantId, refusal.reason, { requests: 1, spans });
      throw new ReceiverError(429, REFUSAL_MESSAGES[refusal.reason], Math.ceil(refusal.waitMs / 1000));
    }
    return pipeline.ingest(request, { receivedAt, raw: { encoding, body: decoded }, ...(keyTenant !== undefined ? { keyTenant } : {}) });
  }

  /** Refuses a request whose tenant was refused for its rate a moment ago, before its spans are decoded. */
  function refuseIfLimited(tenants: readonly string[]): void {
    let waitMs = 0;
    let refused = '';
    for (const tenant of tenants) {
      const wait = options.limiter?.refusing(tenant) ?? 0;
      if (wait > waitMs) [waitMs, refused] = [wait, tenant];
    }
    if (waitMs === 0) return;
    metrics.ingestRequestsRefused.inc({ reason: 'tenant_rate_limited' });
    options.refusals?.refused(refused, 'tenant_rate_limited', { requests: 1 });
    throw new ReceiverError(429, 'tenant ingest rate limit exceeded; retry later', Math.ceil(waitMs / 1000));
  }
}

const REFUSAL_MESSAGES: Record<IngestRefusalReason, string> = {
  tenant_rate_limited: 'tenant ingest rate limit exceeded; retry later',
  unknown_tenants_rate_limited: 'ingest rate limit shared by tenants not named in the policy exceeded; retry later',
  unknown_tenants_count_limited: 'too many tenants not named in the policy are sending at once; retry later',
};

function requestEncoding(contentType: string | undefined): OtlpEncoding {
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType === 'application/x-protobuf' || mediaType === 'application/protobuf') return 'protobuf';
  if (mediaType === 'application/json') return 'json';
  throw new ReceiverError(415, `unsupported content type ${JSON.stringify(mediaType)}; use application/x-protobuf or application/json`);
}

function authenticate(key: string | undefined, options: ReceiverOptions): string | undefined {
  if (!options.tenantForKey) return undefined;
  const tenant = options.tenantForKey(key);
  if (tenant === null) return undefined;
  if (tenant === undefined) throw new ReceiverError(401, 'missing or unknown ingest key');
  return tenant;
}

function ingestKey(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  const header = req.headers['x-breakwater-key'];
  return typeof header === 'string' ? header : undefined;
}

/** A 413 says how to take the body, not only that it was refused. */
const RAISE_BODY_LIMIT = 'raise it with --max-body-bytes (BREAKWATER_MAX_BODY_BYTES) or send smaller batches (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)';

/** The request body, refused with 413 past `limit` bytes (declared or sent) and 400 when it cannot be read. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new ReceiverError(413, `body of ${declared} bytes is over the ${limit}-byte limit; ${RAISE_BODY_LIMIT}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(new ReceiverError(413, `body is over the ${limit}-byte limit; ${RAISE_BODY_LIMIT}`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new ReceiverError(400, `could not read the body: ${err.message}`));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

async function decompress(body: Buffer, contentEncoding: string | undefined, limit: number): Promise<Buffer> {
  const coding = (contentEncoding ?? 'identity').trim().toLowerCase();
  try {
    // maxOutputLength stops a decompression bomb at the limit instead of after inflating it all.
    if (coding === 'gzip' || coding === 'x-gzip') return await gunzipAsync(body, { maxOutputLength: limit });
    if (coding === 'deflate') return await inflateAsync(body, { maxOutputLength: limit });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new ReceiverError(413, `decompressed body is over the ${limit}-byte limit; ${RAISE_BODY_LIMIT}`);
    }
    throw new ReceiverError(400, `invalid ${coding} body: ${(err as Error).message}`);
  }
  if (coding === 'identity' || coding === '') return body;
  throw new ReceiverError(415, `unsupported content encoding ${JSON.stringify(coding)}; use gzip or none`);
}

function decode(body: Buffer, encoding: OtlpEncoding, limits: AttributeLimits | undefined): OtlpTraceRequest {
  try {
    if (encoding === 'protobuf') return decodeTraceRequestProtobuf(body, limits);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    return decodeTraceRequestJson(text, limits);
  } catch (err) {
    if (err instanceof OtlpDecodeError) throw new ReceiverError(400, `undecodable OTLP ${encoding} body: ${err.message}`);
    if (err instanceof TypeError) throw new ReceiverError(400, `undecodable OTLP ${encoding} body: invalid UTF-8`);
    throw err;
  }
}

/**
 * Spans per tenant for the rate limit: the ingest key's tenant, else the resource's tenant.id.
 * A span-level tenant.id is not looked at here (normalization reads it later); such spans count
 * toward their resource's tenant.
 */
function spansByTenant(request: OtlpTraceRequest, keyTenant: string | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const rs of request.resourceSpans) {
    const tenant = keyTenant ?? resourceTenant(rs.resource);
    let n = 0;
    for (const ss of rs.scopeSpans) n += ss.spans.length;
    counts.set(tenant, (counts.get(tenant) ?? 0) + n);
  }
  return counts;
}

function countSpans(request: OtlpTraceRequest): number {
  let n = 0;
  for (const rs of request.resourceSpans) for (const ss of rs.scopeSpans) n += ss.spans.length;
  return n;
}

function asReceiverError(err: unknown): ReceiverError {
  if (err instanceof ReceiverError) return err;
  // Unexpected failures are logged by the server; the client gets no internals.
  return new ReceiverError(500, 'internal error');
}

function send(res: ServerResponse, status: number, { contentType, body }: EncodedBody): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': body.length });
  res.end(body);
}
