// A stand-in OTLP/HTTP receiver: decodes the protobuf bytes the official exporter sends, records
// when each request arrived and when it was answered, and holds (or fails) its answers on demand.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeTraceRequestProtobuf } from '../../src/codecs/decode-protobuf.js';
import type { KeyValue, OtlpSpan } from '../../src/codecs/otlp-model.js';

export interface SinkRequest {
  /** performance.now() when the whole body had arrived */
  arrivedAt: number;
  /** performance.now() when the answer was written; undefined while held */
  answeredAt: number | undefined;
  spans: OtlpSpan[];
  /** requests open (arrived, not yet answered) when this one arrived, itself included */
  openOnArrival: number;
}

export interface SinkOptions {
  /** ms each answer is held; default 0 */
  holdMs?: number;
  /** HTTP status of every answer; default 200 */
  status?: number;
}

export class OtlpSink {
  readonly requests: SinkRequest[] = [];
  holdMs: number;
  status: number;
  /** called with every decoded request as it arrives, before its answer is held */
  onRequest: (request: SinkRequest) => void = () => {};
  #open = 0;
  #maxOpen = 0;

  private constructor(
    private readonly server: Server,
    options: SinkOptions,
  ) {
    this.holdMs = options.holdMs ?? 0;
    this.status = options.status ?? 200;
  }

  static async start(options: SinkOptions = {}): Promise<OtlpSink> {
    const server = createServer();
    const sink = new OtlpSink(server, options);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => sink.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return sink;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** the most requests open at once so far */
  get maxOpen(): number {
    return this.#maxOpen;
  }

  get open(): number {
    return this.#open;
  }

  get spans(): OtlpSpan[] {
    return this.requests.flatMap((r) => r.spans);
  }

  reset(options: SinkOptions = {}): void {
    this.requests.length = 0;
    this.holdMs = options.holdMs ?? 0;
    this.status = options.status ?? 200;
    this.#maxOpen = this.#open;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.#open++;
      this.#maxOpen = Math.max(this.#maxOpen, this.#open);
      const body = Buffer.concat(chunks);
      const spans = decodeTraceRequestProtobuf(body).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
      const request: SinkRequest = { arrivedAt: performance.now(), answeredAt: undefined, spans, openOnArrival: this.#open };
      this.requests.push(request);
      this.onRequest(request);
      setTimeout(() => {
        this.#open--;
        request.answeredAt = performance.now();
        res.writeHead(this.status, { 'content-type': 'application/x-protobuf' });
        res.end();
      }, this.holdMs);
    });
  }
}

/** A string attribute of a decoded span. */
export function attribute(span: OtlpSpan, key: string): unknown {
  return span.attributes.find((a: KeyValue) => a.key === key)?.value;
}
