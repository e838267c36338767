// The enforcing model gateway: OpenAI- and Anthropic-compatible endpoints that check the tenant's
// and run's current decision before any upstream call, forward what passes with the server's own
// provider key, and hand every call to the ingest pipeline as a span (docs/gateway.md).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../contracts/decision.js';
import type { OtlpTraceRequest } from '../codecs/otlp-model.js';
import { judge, ProbeLimiter, type Verdict } from './gate.js';
import { gatewaySpanRequest, type GatewayCall } from './gateway-span.js';
import { errorBody, presentedKey, routeOf, type ProviderApi, type RefusalDetail, type RefusalKind, type Route } from './provider-api.js';
import { ResponseUsage, StreamReader } from './response-usage.js';
import { readBody, ReceiverError } from '../receivers/otlp-http.js';

export interface Upstream {
  /** base URL the API paths are appended to, such as https://api.openai.com */
  url: string;
  /** the provider key; never sent back, never logged */
  key: string | undefined;
}

export interface GatewayDeps {
  /** gateway key to tenant; undefined when unknown */
  tenantForKey(key: string | undefined): string | undefined;
  decision(tenantId: string, runId: string | undefined): Decision;
  probeSteps(tenantId: string): number;
  ingest(request: OtlpTraceRequest, tenantId: string): void;
  upstreams: Readonly<Record<ProviderApi, Upstream>>;
  maxBodyBytes: number;
  upstreamTimeoutMs: number;
  onError(message: string, err: unknown): void;
}

export const RUN_HEADER = 'x-breakwater-run-id';
const MAX_RUN_ID = 256;

/** Request headers a provider needs from its client; the client's own key is never among them. */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'user-agent', 'openai-beta', 'anthropic-version', 'anthropic-beta'];
const FORWARDED_RESPONSE_HEADER = /^(content-type|x-request-id|request-id|openai-processing-ms|retry-after|retry-after-ms|x-ratelimit-.*|anthropic-ratelimit-.*)$/;
const RATE_LIMIT_HEADER = /^(retry-after|retry-after-ms|x-ratelimit-.*|anthropic-ratelimit-.*)$/;

export function createGatewayHandler(deps: GatewayDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const probes = new ProbeLimiter();
  return (req, res) => {
    handle(deps, probes, req, res).catch((err: unknown) => {
      deps.onError('gateway request failed', err);
      if (!res.headersSent) send(res, 500, 'openai', 'upstream', 'internal error in the Breakwater gateway');
      else res.destroy();
    });
  };
}

async function handle(deps: GatewayDeps, probes: ProbeLimiter, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  const route = routeOf(req.method, path);
  if (route === undefined) {
    req.resume();
    send(res, 404, path === '/v1/messages' ? 'anthropic' : 'openai', 'not_found', `no ${req.method} ${path} here: the gateway serves POST /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/messages and GET /v1/models`);
    return;
  }
  const tenantId = deps.tenantForKey(presentedKey(req.headers));
  if (tenantId === undefined) {
    req.resume();
    send(res, 401, route.api, 'authentication', 'unknown gateway key: use a key from auth.tenants.<tenant>.gatewayKeys');
    return;
  }
  const upstream = deps.upstreams[route.api];
  if (route.operation === 'list_models') {
    req.resume();
    await forward(deps, upstream, route, req, res, undefined, undefined);
    return;
  }

  let body: Buffer;
  try {
    body = await readBody(req, deps.maxBodyBytes);
  } catch (err) {
    if (!(err instanceof ReceiverError)) throw err;
    // The rest of an oversized body is not read: the connection cannot carry another request.
    if (err.status === 413) res.setHeader('connection', 'close');
    const message = err.status === 413 ? `request body over the gateway's ${deps.maxBodyBytes}-byte limit (--max-body-bytes)` : err.message;
    send(res, err.status, route.api, err.status === 413 ? 'too_large' : 'invalid_request', message);
    return;
  }
  let parsed: Record<string, unknown>;
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    parsed = value as Record<string, unknown>;
  } catch {
    send(res, 400, route.api, 'invalid_request', 'the request body is not a JSON object');
    return;
  }
  const requestModel = typeof parsed.model === 'string' ? parsed.model : '';
  if (route.needsModel && (requestModel === '' || requestModel.length > 256)) {
    send(res, 400, route.api, 'invalid_request', 'model: a model name (1 to 256 characters) is required');
    return;
  }
  const runId = runIdOf(req, parsed);
  if (runId === null) {
    send(res, 400, route.api, 'invalid_request', `${RUN_HEADER}: a run id is 1 to ${MAX_RUN_ID} printable characters`);
    return;
  }

  const verdict = judge(deps.decision(tenantId, runId === '' ? undefined : runId), deps.probeSteps(tenantId), probes);
  if (refuse(res, route.api, verdict)) return;
  if (verdict.kind !== 'pass') return;
  try {
    const rewritten = verdict.model !== undefined && verdict.model !== requestModel ? Buffer.from(JSON.stringify({ ...parsed, model: verdict.model })) : body;
    const call: GatewayCall = {
      tenantId,
      runId,
      api: route.api,
      operation: route.operation,
      requestModel: verdict.model ?? requestModel,
      responseModel: '',
      inputTokens: 0,
      outputTokens: 0,
      finishReasons: [],
      status: 0,
      errorType: '',
      rateLimitHeaders: {},
      startMs: Date.now(),
      endMs: 0,
      ...(verdict.model !== undefined ? { degradedFrom: requestModel } : {}),
    };
    if (verdict.decision.action === 'DEGRADE') res.setHeader('x-breakwater-degraded', verdict.model ?? 'true');
    if (verdict.decision.action === 'WARN') res.setHeader('x-breakwater-warning', headerText(verdict.decision.reason));
    await forward(deps, upstream, route, req, res, rewritten, call);
  } finally {
    verdict.release();
  }
}

/** Answers a HALT or THROTTLE in the provider's format; false when the request may go on. */
function refuse(res: ServerResponse, api: ProviderApi, verdict: Verdict): boolean {
  if (verdict.kind === 'pass') return false;
  const d = verdict.decision;
  const detail: RefusalDetail = { reason: d.reason, metric: d.metric, threshold: d.threshold, observed: d.observed, scope: d.scope };
  if (verdict.kind === 'halt') {
    const retryAfterMs = d.retryAfterMs;
    if (retryAfterMs > 0) res.setHeader('retry-after', String(Math.ceil(retryAfterMs / 1000)));
    res.setHeader('x-breakwater-decision', 'HALT');
    send(res, 403, api, 'permission', `halted by Breakwater: ${d.reason || 'the tenant or run is halted'}`, { ...detail, retryAfterMs });
    return true;
  }
  const seconds = Math.ceil(verdict.retryAfterMs / 1000);
  res.setHeader('retry-after', String(seconds));
  res.setHeader('retry-after-ms', String(verdict.retryAfterMs));
  res.setHeader('x-ratelimit-reset-requests', `${seconds}s`);
  res.setHeader('x-breakwater-decision', 'THROTTLE');
  send(res, 429, api, 'rate_limit', `throttled by Breakwater: ${verdict.why}`, { ...detail, retryAfterMs: verdict.retryAfterMs });
  return true;
}

/** Sends the request upstream with the server's key and relays the answer, reading its usage on the way. */
async function forward(deps: GatewayDeps, upstream: Upstream, route: Route, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, call: GatewayCall | undefined): Promise<void> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  if (upstream.key !== undefined) {
    if (route.api === 'anthropic') headers['x-api-key'] = upstream.key;
    else headers.authorization = `Bearer ${upstream.key}`;
  }
  const usage = new ResponseUsage();
  let response: Response;
  try {
    response = await fetch(`${upstream.url.replace(/\/$/, '')}${(req.url ?? '/')}`, {
      method: req.method ?? 'GET',
      headers,
      ...(body !== undefined ? { body: new Uint8Array(body) } : {}),
      signal: AbortSignal.timeout(deps.upstreamTimeoutMs),
    });
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError';
    if (call !== undefined) finish(deps, call, usage, 0, timedOut ? 'timeout' : 'connection');
    send(res, timedOut ? 504 : 502, route.api, 'upstream', `the ${route.api} upstream ${timedOut ? 'did not answer in time' : 'could not be reached'}`);
    return;
  }
  res.statusCode = response.status;
  for (const [name, value] of response.headers) {
    if (!FORWARDED_RESPONSE_HEADER.test(name)) continue;
    res.setHeader(name, value);
    if (call !== undefined && RATE_LIMIT_HEADER.test(name)) call.rateLimitHeaders[name] = value;
  }
  const streaming = (response.headers.get('content-type') ?? '').includes('text/event-stream');
  const stream = streaming ? new StreamReader(usage) : undefined;
  const chunks: Buffer[] = [];
  const reader = response.body?.getReader();
  for (;;) {
    const part = await reader?.read();
    if (part === undefined || part.done) break;
    {
      const chunk = Buffer.from(part.value);
      if (stream !== undefined) {
        stream.push(chunk);
        res.write(chunk);
      } else chunks.push(chunk);
    }
  }
  stream?.end();
  const whole = Buffer.concat(chunks);
  if (stream === undefined && call !== undefined) {
    try {
      usage.read(JSON.parse(whole.toString('utf8')));
    } catch {
      // not JSON: relayed as it came
    }
  }
  // The span is judged before the answer ends, so the client's next call meets its decision.
  if (call !== undefined) finish(deps, call, usage, response.status, usage.errorType);
  res.end(stream === undefined ? whole : undefined);
}

function finish(deps: GatewayDeps, call: GatewayCall, usage: ResponseUsage, status: number, errorType: string): void {
  call.endMs = Date.now();
  call.status = status;
  call.errorType = errorType || (status >= 400 ? String(status) : '');
  call.responseModel = usage.model;
  call.inputTokens = usage.inputTokens;
  call.outputTokens = usage.outputTokens;
  call.finishReasons = [...usage.finishReasons];
  try {
    deps.ingest(gatewaySpanRequest(call), call.tenantId);
  } catch (err) {
    deps.onError('gateway call not recorded', err);
  }
}

/** The run: the header, else the Responses API's conversation; '' for none; null for an unusable one. */
function runIdOf(req: IncomingMessage, body: Record<string, unknown>): string | null {
  const header = req.headers[RUN_HEADER];
  const conversation = body.conversation;
  const value =
    typeof header === 'string' ? header
    : typeof conversation === 'string' ? conversation
    : conversation !== null && typeof conversation === 'object' && typeof (conversation as { id?: unknown }).id === 'string' ? (conversation as { id: string }).id
    : '';
  if (value === '') return '';
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  return value.length <= MAX_RUN_ID && !/[\u0000-\u001f\u007f]/.test(value) ? value : null;
}

function send(res: ServerResponse, status: number, api: ProviderApi, kind: RefusalKind, message: string, detail?: RefusalDetail): void {
  const body = errorBody(api, kind, message, detail);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}

function headerText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 500);
}
