// The bodies OTLP/HTTP answers with, in the request's encoding: ExportTraceServiceResponse on
// success (partial_success only when something was rejected) and google.rpc.Status on errors.
// Both messages are tiny, so they are written by hand rather than through a protobuf library.

export type OtlpEncoding = 'protobuf' | 'json';

export interface EncodedBody {
  contentType: string;
  body: Buffer;
}

export function exportResponse(encoding: OtlpEncoding, rejectedSpans: number, errorMessage: string): EncodedBody {
  const partial = rejectedSpans > 0 || errorMessage !== '';
  if (encoding === 'json') {
    const body = partial ? { partialSuccess: { rejectedSpans: String(rejectedSpans), errorMessage } } : {};
    return { contentType: 'application/json', body: Buffer.from(JSON.stringify(body)) };
  }
  if (!partial) return { contentType: 'application/x-protobuf', body: Buffer.alloc(0) };
  // ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }
  const inner = Buffer.concat([
    rejectedSpans > 0 ? Buffer.concat([tag(1, 0), varint(rejectedSpans)]) : Buffer.alloc(0),
    errorMessage !== '' ? lengthDelimited(2, Buffer.from(errorMessage, 'utf8')) : Buffer.alloc(0),
  ]);
  // ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
  return { contentType: 'application/x-protobuf', body: lengthDelimited(1, inner) };
}

/** google.rpc.Status { int32 code = 1; string message = 2; } with a gRPC code matching the HTTP status. */
export function errorStatus(encoding: OtlpEncoding, httpStatus: number, message: string): EncodedBody {
  const code = GRPC_CODE_FOR_HTTP[httpStatus] ?? 2;
  if (encoding === 'json') {
    return { contentType: 'application/json', body: Buffer.from(JSON.stringify({ code, message })) };
  }
  const body = Buffer.concat([tag(1, 0), varint(code), lengthDelimited(2, Buffer.from(message, 'utf8'))]);
  return { contentType: 'application/x-protobuf', body };
}

const GRPC_CODE_FOR_HTTP: Record<number, number> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  404: 5, // NOT_FOUND
  405: 12, // UNIMPLEMENTED
  413: 3, // INVALID_ARGUMENT (too large)
  415: 3,
  429: 8, // RESOURCE_EXHAUSTED
  503: 14, // UNAVAILABLE
};

function tag(field: number, wireType: number): Buffer {
  return varint((field << 3) | wireType);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = BigInt(value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Buffer.from(bytes);
}

function lengthDelimited(field: number, payload: Buffer): Buffer {
  return Buffer.concat([tag(field, 2), varint(payload.length), payload]);
}
