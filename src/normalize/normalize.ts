import type { AgentSpan } from '../contracts/agent-span.js';
import type { AnyValue, KeyValue, OtlpResource, OtlpResourceSpans, OtlpScopeSpans, OtlpSpan, OtlpTraceRequest } from '../codecs/otlp-model.js';
import { listWeight, overBudgetReason, RequestAttributeBudget, spanWeight, type AttributeBudget } from './attribute-budget.js';
import {
  conventionLookup,
  MODEL_OPERATIONS,
  OPERATION_CONVENTIONS,
  providerName,
  TOOL_NAME_KEYS,
  TOOL_OPERATION,
  TRACELOOP_ENTITY_NAME,
  type KeySource,
  type RankedField,
} from './conventions.js';
import { RequestedToolCalls, settleRequestedToolCalls, type ToolSpanTraces } from './tool-calls.js';
import { liftChildRateLimits } from './child-rate-limits.js';
import { headerName } from './rate-limit-headers.js';

// Reads the GenAI semantic conventions, and the older and neighbouring spellings seen in the wild
// (OpenLLMetry's gen_ai.system / prompt_tokens, OpenInference's span kinds and token counts), into
// the agent columns of an AgentSpan. The raw attributes are kept whole beside them. Run, provider,
// models, the step kind and tool names come from the tables in conventions.ts.

/** Position of each OPERATION_CONVENTIONS key: a lower one decides. */
const OPERATION_KEY_RANK: ReadonlyMap<string, number> = new Map(OPERATION_CONVENTIONS.map(([key], rank) => [key, rank]));
const TOOL_NAME_RANK: ReadonlyMap<string, number> = new Map(TOOL_NAME_KEYS.map((key, rank) => [key, rank]));

export interface NormalizeOptions {
  /** reject spans without tenant.id (default) instead of storing them under '' */
  requireTenant: boolean;
  /** set when the request came with an ingest key bound to a tenant: other tenants are rejected */
  keyTenant?: string;
  /** longest tenant / run id accepted */
  maxIdLength?: number;
  /** spans must start inside it: storage keeps them (and one insert never touches too many partitions) */
  acceptedStart?: AcceptedStartWindow;
  /** attributes one request may have stored; spans past it are rejected */
  attributeBudget?: AttributeBudget;
  /** the policy's `runKeys`: attributes naming a run, after `agent.run.id` and before the conversation ids */
  runKeys?: readonly string[];
  /** traces seen with a tool span in earlier requests (tool-calls.ts); without it only this request's count */
  toolSpanTraces?: ToolSpanTraces;
}

/** Span start times storage accepts: within the retention window, and not too far ahead of the clock. */
export interface AcceptedStartWindow {
  nowMs: number;
  retentionDays: number;
  /** default 1 h */
  futureToleranceMs?: number;
}

const DAY_MS = 86_400_000;
const DEFAULT_FUTURE_TOLERANCE_MS = 3_600_000;
const NS_PER_MS = 1_000_000n;

export interface NormalizeResult {
  spans: AgentSpan[];
  rejected: number;
  /** one line per distinct rejection reason, with its count */
  errorMessage: string;
  /** of the rejected, those refused for the request's attribute budget */
  overBudget: number;
  /** bytes the accepted spans' attributes take stored, in all and by tenant (0 and empty without an attribute budget) */
  attributeBytes: number;
  attributeBytesByTenant: Map<string, number>;
}

export function normalizeRequest(request: OtlpTraceRequest, options: NormalizeOptions): NormalizeResult {
  const spans: AgentSpan[] = [];
  const rejections = new Map<string, number>();
  const reject = (reason: string) => rejections.set(reason, (rejections.get(reason) ?? 0) + 1);
  const maxIdLength = options.maxIdLength ?? 256;
  ranked.lookup = lookupFor(options.runKeys ?? NO_RUN_KEYS);
  ranked.maxIdLength = maxIdLength;
  const window = options.acceptedStart === undefined ? undefined : startBounds(options.acceptedStart);
  const budget = options.attributeBudget === undefined ? undefined : new RequestAttributeBudget(options.attributeBudget);
  let overBudget = 0;
  const bytesByTenant = new Map<string, number>();
  for (const resourceSpans of request.resourceSpans) {
    const resource = readResource(resourceSpans);
    // Weighed once per resource, charged once per span: what storage will hold.
    const resourceWeight = budget === undefined ? undefined : listWeight(resourceSpans.resource.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans) {
      for (const span of scopeSpans.spans) {
        const agentSpan = normalizeSpan(span, scopeSpans, resourceSpans, resource);
        const problem = validate(agentSpan, options, maxIdLength) ?? (window === undefined ? undefined : outsideWindow(agentSpan, window));
        if (problem) reject(problem);
        else if (budget === undefined) spans.push(agentSpan);
        else {
          const weight = spanWeight(span);
          if (budget.take(resourceWeight!, weight)) {
            spans.push(agentSpan);
            const bytes = resourceWeight!.bytes + weight.bytes;
            bytesByTenant.set(agentSpan.tenantId, (bytesByTenant.get(agentSpan.tenantId) ?? 0) + bytes);
          } else {
            reject(overBudgetReason(options.attributeBudget!));
            overBudget++;
          }
        }
      }
    }
  }
  settleRequestedToolCalls(spans, options.toolSpanTraces);
  let rejected = 0;
  const lines: string[] = [];
  for (const [reason, count] of rejections) {
    rejected += count;
    lines.push(`${count} span(s) rejected: ${reason}`);
  }
  liftChildRateLimits(spans);
  return { spans, rejected, errorMessage: lines.join('; '), overBudget, attributeBytes: budget?.usedBytes ?? 0, attributeBytesByTenant: bytesByTenant };
}

// Ids arrive as lowercase hex of their bytes: of the right length, all-zero is exactly these.
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

function validate(span: AgentSpan, options: NormalizeOptions, maxIdLength: number): string | undefined {
  if (span.traceId.length !== 32 || span.traceId === ZERO_TRACE_ID) return 'invalid trace id (need 16 non-zero bytes)';
  if (span.spanId.length !== 16 || span.spanId === ZERO_SPAN_ID) return 'invalid span id (need 8 non-zero bytes)';
  if (span.tenantId === '' && options.requireTenant) return 'missing tenant.id (set it on the resource or the span)';
  if (span.tenantId.length > maxIdLength) return `tenant.id longer than ${maxIdLength} characters`;
  if (span.runId.length > maxIdLength) return `agent.run.id longer than ${maxIdLength} characters`;
  if (options.keyTenant !== undefined && span.tenantId !== options.keyTenant) {
    // Says nothing about which tenant the key belongs to: the sender may not know it.
    return 'tenant.id does not match the ingest key';
  }
  if (span.endTimeUnixNano < span.startTimeUnixNano) return 'end time before start time';
  // DateTime64(9) ends at 2^63 - 1 ns (2262-04-11); past it ClickHouse cannot store the span.
  if (span.endTimeUnixNano > MAX_STORABLE_TIME_NS) return 'end time past 2262-04-11 (not storable)';
  return undefined;
}

const MAX_STORABLE_TIME_NS = (1n << 63n) - 1n;

interface StartBounds {
  fromNs: bigint;
  untilNs: bigint;
  tooOld: string;
  tooNew: string;
}

function startBounds(window: AcceptedStartWindow): StartBounds {
  const tolerance = window.futureToleranceMs ?? DEFAULT_FUTURE_TOLERANCE_MS;
  return {
    fromNs: BigInt(Math.floor(window.nowMs - window.retentionDays * DAY_MS)) * NS_PER_MS,
    untilNs: BigInt(Math.floor(window.nowMs + tolerance)) * NS_PER_MS,
    tooOld: `start time older than the ${window.retentionDays}-day retention window`,
    tooNew: `start time more than ${Math.round(tolerance / 60_000)} min ahead of the server clock`,
  };
}

function outsideWindow(span: AgentSpan, bounds: StartBounds): string | undefined {
  if (span.startTimeUnixNano < bounds.fromNs) return bounds.tooOld;
  if (span.startTimeUnixNano > bounds.untilNs) return bounds.tooNew;
  return undefined;
}

interface ResourceFacts {
  tenantId: string;
  serviceName: string;
}

function readResource(resourceSpans: OtlpResourceSpans): ResourceFacts {
  let serviceName = '';
  for (const { key, value } of resourceSpans.resource.attributes) if (key === 'service.name') serviceName = text(value);
  return { tenantId: resourceTenant(resourceSpans.resource), serviceName };
}

/**
 * The tenant a resource names: its last `tenant.id`, as text ('' when absent). The spans under it
 * belong to that tenant unless one names another itself; the receiver's rate limit charges the
 * request to it by this same rule.
 */
export function resourceTenant(resource: OtlpResource): string {
  let tenantId = '';
  for (const { key, value } of resource.attributes) if (key === 'tenant.id') tenantId = text(value);
  return tenantId;
}

function normalizeSpan(span: OtlpSpan, scopeSpans: OtlpScopeSpans, resourceSpans: OtlpResourceSpans, resource: ResourceFacts): AgentSpan {
  const out: AgentSpan = {
    tenantId: resource.tenantId,
    runId: '',
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    traceState: span.traceState,
    flags: span.flags,
    name: span.name,
    kind: span.kind,
    startTimeUnixNano: span.startTimeUnixNano,
    endTimeUnixNano: span.endTimeUnixNano,
    statusCode: span.status.code,
    statusMessage: span.status.message,
    serviceName: resource.serviceName,
    scopeName: scopeSpans.scope.name,
    scopeVersion: scopeSpans.scope.version,
    resourceAttributes: resourceSpans.resource.attributes,
    spanAttributes: span.attributes,
    events: span.events,
    links: span.links,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
    operation: '',
    provider: '',
    requestModel: '',
    responseModel: '',
    toolName: '',
    toolCalls: 0,
    agentId: '',
    agentName: '',
    conversationId: '',
    inputTokens: 0,
    outputTokens: 0,
    errorType: '',
    httpStatusCode: 0,
    isError: span.status.code === 2,
    depth: -1,
    rateLimitRemainingRequests: -1,
    rateLimitRemainingTokens: -1,
    rateLimitLimitRequests: -1,
    rateLimitLimitTokens: -1,
    retryAfterMs: -1,
  };
  fallbacks.operation = fallbacks.entityName = '';
  fallbacks.operationRank = fallbacks.toolNameRank = UNSET;
  requested.reset();
  ranked.runId = ranked.provider = ranked.requestModel = ranked.responseModel = UNSET;
  for (const attribute of span.attributes) readAttribute(out, attribute);
  if (out.runId === '') out.runId = span.traceId;
  out.provider = providerName(out.provider);
  if (out.operation === '') out.operation = fallbacks.operation !== '' ? fallbacks.operation : out.toolName !== '' ? TOOL_OPERATION : '';
  if (out.operation === TOOL_OPERATION) {
    if (out.toolName === '') out.toolName = fallbacks.entityName;
    out.toolCalls = 1;
  } else if (MODEL_OPERATIONS.has(out.operation)) {
    const calls = requested.calls();
    if (calls.count > 0) {
      out.toolCalls = calls.count;
      out.toolName = calls.names.join(',');
    }
  }
  if (out.errorType !== '') out.isError = true;
  else if (out.isError) out.errorType = '_OTHER';
  return out;
}

/**
 * What a span's attributes say that only counts when the GenAI attributes are missing. Module
 * state, reset per span (normalization is synchronous): closures over locals cost an allocation
 * per span.
 */
const UNSET = Number.MAX_SAFE_INTEGER;
const fallbacks = { operation: '', operationRank: UNSET, toolNameRank: UNSET, entityName: '' };
const requested = new RequestedToolCalls();

const NO_RUN_KEYS: readonly string[] = [];

/**
 * The convention lookup of the request being normalized, and the rank of the key each ranked field
 * was taken from on the current span: module state for the reason `fallbacks` is.
 */
const ranked: Record<RankedField, number> & { lookup: ReadonlyMap<string, KeySource>; maxIdLength: number } = {
  lookup: conventionLookup(),
  maxIdLength: 256,
  runId: UNSET,
  provider: UNSET,
  requestModel: UNSET,
  responseModel: UNSET,
};

// The policy's run keys change only on a reload: the lookup is rebuilt when the list does.
let lookupKeys: readonly string[] = NO_RUN_KEYS;
let lookupTable = ranked.lookup;
function lookupFor(runKeys: readonly string[]): ReadonlyMap<string, KeySource> {
  if (runKeys !== lookupKeys) {
    lookupKeys = runKeys;
    lookupTable = conventionLookup(runKeys);
  }
  return lookupTable;
}

/** Takes a ranked field's value when it comes from a better key than the one already taken. */
function takeRanked(out: AgentSpan, { field, rank }: KeySource, value: AnyValue): void {
  if (rank >= ranked[field]) return;
  const v = text(value);
  if (v === '') return;
  // A conversation id too long to be a run id is passed over; an agent.run.id that long is refused.
  if (field === 'runId' && rank > 0 && v.length > ranked.maxIdLength) return;
  out[field] = v;
  ranked[field] = rank;
}

// One pass over the span's attributes; a switch on the key beats building a map per span.
function readAttribute(out: AgentSpan, { key, value }: KeyValue): void {
  const source = ranked.lookup.get(key);
  if (source !== undefined) {
    takeRanked(out, source, value);
    // A run key may be one the switch reads too (gen_ai.conversation.id).
    if (source.field !== 'runId') return;
  }
  switch (key) {
    case 'tenant.id':
      out.tenantId = text(value);
      return;
    case 'agent.depth':
      out.depth = Math.max(-1, Math.min(1000, Math.trunc(number(value, -1))));
      return;
    case 'gen_ai.operation.name':
      out.operation = text(value).toLowerCase();
      return;
    case TRACELOOP_ENTITY_NAME:
      fallbacks.entityName = text(value);
      return;
    case 'gen_ai.agent.id':
      out.agentId = text(value);
      return;
    case 'gen_ai.agent.name':
      out.agentName = text(value);
      return;
    case 'gen_ai.conversation.id':
      out.conversationId = text(value);
      return;
    case 'gen_ai.usage.input_tokens':
    case 'gen_ai.usage.prompt_tokens':
    case 'llm.token_count.prompt':
      out.inputTokens = tokenCount(value);
      return;
    case 'gen_ai.usage.output_tokens':
    case 'gen_ai.usage.completion_tokens':
    case 'llm.token_count.completion':
      out.outputTokens = tokenCount(value);
      return;
    case 'error.type':
      out.errorType = text(value);
      return;
    case 'http.response.status_code':
    case 'http.status_code':
      out.httpStatusCode = Math.max(0, Math.min(999, Math.trunc(number(value, 0))));
      return;
    default:
      if (source !== undefined) return;
      if (readStepConvention(out, key, value) || requested.read(key, value)) return;
      readRateLimitHeader(out, key, value);
  }
}

/** The other instrumentations' span kinds and tool names (conventions.ts); true when `key` was one. */
function readStepConvention(out: AgentSpan, key: string, value: AnyValue): boolean {
  const operationRank = OPERATION_KEY_RANK.get(key);
  if (operationRank !== undefined) {
    if (operationRank < fallbacks.operationRank) {
      const values = OPERATION_CONVENTIONS[operationRank]![1];
      const v = text(value);
      const operation = values[v] ?? values[v.toLowerCase()] ?? values[v.toUpperCase()];
      if (operation !== undefined) {
        fallbacks.operation = operation;
        fallbacks.operationRank = operationRank;
      }
    }
    return true;
  }
  const toolRank = TOOL_NAME_RANK.get(key);
  if (toolRank !== undefined) {
    const v = text(value);
    if (toolRank < fallbacks.toolNameRank && v !== '') {
      out.toolName = v;
      fallbacks.toolNameRank = toolRank;
    }
    return true;
  }
  return false;
}

/**
 * Provider rate-limit headers, recorded bare or under http.response.header.* (as semconv names
 * them), with `-` or `_` (rate-limit-headers.ts): OpenAI's `x-ratelimit-*`, and Anthropic's `anthropic-ratelimit-*` into the same columns
 * where no `x-ratelimit-*` value is set (that one wins whatever the attribute order).
 */
function readRateLimitHeader(out: AgentSpan, key: string, value: AnyValue): void {
  const name = headerName(key);
  if (name.startsWith(ANTHROPIC_PREFIX)) {
    readAnthropicRateLimit(out, name, value);
    return;
  }
  switch (name) {
    case 'x-ratelimit-remaining-requests':
      out.rateLimitRemainingRequests = nonNegative(value);
      return;
    case 'x-ratelimit-remaining-tokens':
      out.rateLimitRemainingTokens = nonNegative(value);
      return;
    case 'x-ratelimit-limit-requests':
      out.rateLimitLimitRequests = nonNegative(value);
      return;
    case 'x-ratelimit-limit-tokens':
      out.rateLimitLimitTokens = nonNegative(value);
      return;
    case 'retry-after':
      out.retryAfterMs = retryAfterMs(text(value));
      return;
    case 'retry-after-ms':
      out.retryAfterMs = nonNegative(value);
      return;
  }
}

function first(value: AnyValue): AnyValue {
  // Header attributes are string arrays in the HTTP semantic conventions.
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

function text(value: AnyValue): string {
  const v = first(value);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return '';
}

function number(value: AnyValue, fallback: number): number {
  const v = first(value);
  if (typeof v === 'number') return Number.isFinite(v) ? v : fallback;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : fallback;
  }
  return fallback;
}

const MAX_TOKENS_PER_SPAN = 0xffffffff;

function tokenCount(value: AnyValue): number {
  return Math.max(0, Math.min(MAX_TOKENS_PER_SPAN, Math.trunc(number(value, 0))));
}

const ANTHROPIC_PREFIX = 'anthropic-ratelimit-';

function readAnthropicRateLimit(out: AgentSpan, name: string, value: AnyValue): void {
  const field =
    name === 'anthropic-ratelimit-requests-remaining' ? 'rateLimitRemainingRequests'
    : name === 'anthropic-ratelimit-requests-limit' ? 'rateLimitLimitRequests'
    : name === 'anthropic-ratelimit-tokens-remaining' ? 'rateLimitRemainingTokens'
    : name === 'anthropic-ratelimit-tokens-limit' ? 'rateLimitLimitTokens'
    : undefined;
  if (field !== undefined && out[field] < 0) out[field] = nonNegative(value);
}

function nonNegative(value: AnyValue): number {
  const n = number(value, -1);
  return n < 0 ? -1 : Math.min(Number.MAX_SAFE_INTEGER, Math.trunc(n));
}

/** Retry-After is delta-seconds or an HTTP date (RFC 9110); OpenAI also sends fractional seconds. */
export function retryAfterMs(value: string): number {
  const trimmed = value.trim();
  if (trimmed === '') return -1;
  const seconds = Number(trimmed);
  // Clamped like the other counters: an absurd value must not overflow the Int64 column.
  if (Number.isFinite(seconds)) return seconds < 0 ? -1 : Math.min(Number.MAX_SAFE_INTEGER, Math.round(seconds * 1000));
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? -1 : Math.max(0, date - Date.now());
}
