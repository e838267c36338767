import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import type { Service } from '../../src/app/service.js';
import { recordingTracer } from '../helpers/otel.js';

// Traffic that exercises every panel and alert: real spans from a real tracer, serialized by the
// official OTLP serializer and POSTed to the running receiver, so the rows, the rollup and the
// breaker trips are the ones production would write.

const MINUTE = 60_000;

export const TENANTS = { runaway: 'acme', healthy: 'globex', agents: 'initech' } as const;

/** the latency SLOs the queries test's policy gives acme and globex (initech has none) */
export const LATENCY_SLO_MS = { runaway: 1500, healthy: 30_000 } as const;

/** initech's run whose breaker opened long ago and is still open */
export const STUCK_RUN = 'initech-stuck';

/** a tenant known only from its audit log: a run breaker opened 3 hours ago and closed since */
export const RECOVERED_TENANT = 'hooli';

interface Recorder {
  tracer: ReturnType<typeof recordingTracer>['tracer'];
  finished: ReturnType<typeof recordingTracer>['finished'];
}

function recorder(tenant: string): Recorder {
  const { tracer, finished } = recordingTracer({ 'service.name': `${tenant}-agent`, 'tenant.id': tenant });
  return { tracer, finished };
}

interface Call {
  at: number;
  durationMs: number;
  attributes: Attributes;
  error?: string;
  parent?: Context;
  name?: string;
}

function record(r: Recorder, call: Call): Span {
  const span = r.tracer.startSpan(call.name ?? String(call.attributes['gen_ai.operation.name'] ?? 'step'), { startTime: call.at, attributes: call.attributes }, call.parent ?? ROOT_CONTEXT);
  if (call.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: call.error });
  span.end(call.at + call.durationMs);
  return span;
}

function chat(runId: string, model: string, provider: string, input: number, output: number, extra: Attributes = {}): Attributes {
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': provider,
    'gen_ai.request.model': model,
    'gen_ai.response.model': model,
    'gen_ai.usage.input_tokens': input,
    'gen_ai.usage.output_tokens': output,
    'agent.run.id': runId,
    ...extra,
  };
}

function tool(runId: string, name: string): Attributes {
  return { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': name, 'agent.run.id': runId };
}

function quota(remainingRequests: number, limitRequests: number, remainingTokens: number, limitTokens: number): Attributes {
  return {
    'x-ratelimit-remaining-requests': remainingRequests,
    'x-ratelimit-limit-requests': limitRequests,
    // the HTTP semantic conventions' spelling: a string array under http.response.header.*
    'http.response.header.x-ratelimit-remaining-tokens': [String(remainingTokens)],
    'http.response.header.x-ratelimit-limit-tokens': [String(limitTokens)],
  };
}

async function post(service: Service, r: Recorder): Promise<void> {
  const body = ProtobufTraceSerializer.serializeRequest(r.finished())!;
  const res = await fetch(`${service.otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf' },
    body: Buffer.from(body),
  });
  if (res.status !== 200) throw new Error(`seeding: OTLP answered ${res.status}: ${await res.text()}`);
}

/** History over the last ~50 minutes: stored and rolled up (too old to move the live windows). */
async function seedHistory(service: Service, now: number): Promise<void> {
  const acme = recorder(TENANTS.runaway);
  const globex = recorder(TENANTS.healthy);
  const initech = recorder(TENANTS.agents);
  for (let m = 50; m >= 3; m -= 1) {
    const t = now - m * MINUTE;
    // acme: a normal agent, then (from 20 minutes ago) a run stuck in a tool-call loop
    const acmeRun = m > 20 ? `acme-run-${Math.floor(m / 10)}` : 'acme-loop';
    record(acme, { at: t, durationMs: 900 + (m % 7) * 150, attributes: chat(acmeRun, 'gpt-4o', 'openai', 1200 + m * 40, 300, quota(400 - m, 500, 150_000 - m * 1000, 200_000)) });
    const tools = m > 20 ? 2 : 12;
    for (let i = 0; i < tools; i++) record(acme, { at: t + 1000 + i * 200, durationMs: 120, attributes: tool(acmeRun, 'search_web') });
    // globex: healthy with some tool errors, rate limits from OpenAI and 5xx from Anthropic
    const globexRun = `globex-run-${Math.floor(m / 5)}`;
    record(globex, { at: t + 500, durationMs: 600 + (m % 5) * 300, attributes: chat(globexRun, 'gpt-4o-mini', 'openai', 800, 200, quota(200 + m, 500, 90_000, 200_000)) });
    record(globex, { at: t + 2500, durationMs: 1800, attributes: chat(globexRun, 'claude-sonnet-4-5', 'anthropic', 2000, 500) });
    if (m % 4 === 0) record(globex, { at: t + 3000, durationMs: 80, attributes: { ...tool(globexRun, 'sql_query'), 'error.type': 'tool_error' }, error: 'syntax error' });
    if (m % 6 === 0) {
      // request-rate 429: no requests left in the minute
      record(globex, {
        at: t + 4000,
        durationMs: 50,
        attributes: { ...chat(globexRun, 'gpt-4o-mini', 'openai', 0, 0, quota(0, 500, 80_000, 200_000)), 'http.response.status_code': 429, 'error.type': 'rate_limit_exceeded', 'retry-after': '2' },
        error: 'Rate limit reached for requests',
      });
    }
    if (m % 9 === 0) {
      // token-rate 429: tokens exhausted
      record(globex, {
        at: t + 4500,
        durationMs: 40,
        attributes: { ...chat(globexRun, 'gpt-4o-mini', 'openai', 0, 0, quota(120, 500, 0, 200_000)), 'http.response.status_code': 429, 'error.type': 'rate_limit_exceeded', 'retry-after': '20' },
        error: 'Rate limit reached for tokens per min',
      });
    }
    if (m % 5 === 0) {
      record(globex, {
        at: t + 5000,
        durationMs: 30_000,
        attributes: { ...chat(globexRun, 'claude-sonnet-4-5', 'anthropic', 0, 0), 'http.response.status_code': 529, 'error.type': 'overloaded_error' },
        error: 'Overloaded',
      });
      record(globex, {
        at: t + 6000,
        durationMs: 25_000,
        attributes: { ...chat(globexRun, 'claude-sonnet-4-5', 'anthropic', 0, 0), 'http.response.status_code': 503, 'error.type': '503' },
        error: 'Service Unavailable',
      });
    }
    if (m === 12) {
      // a 429 named only by error.type, as OpenAI's JS and Python instrumentations record it
      record(globex, { at: t + 4200, durationMs: 45, attributes: { ...chat(globexRun, 'gpt-4o-mini', 'openai', 0, 0), 'error.type': 'RateLimitError' }, error: 'Rate limit reached' });
    }
    if (m === 11) {
      // a 529 named only in the status text, as Python OpenInference records it (no error.type, no status code)
      record(globex, {
        at: t + 5500,
        durationMs: 20_000,
        attributes: chat(globexRun, 'claude-sonnet-4-5', 'anthropic', 0, 0),
        error: "Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}}",
      });
    }
    // initech: an orchestrator with nested sub-agents (agent.depth stamped, as the SDK does)
    if (m % 8 === 0) {
      const runId = `initech-run-${m}`;
      const root = record(initech, { at: t, durationMs: 20_000, name: 'invoke_agent planner', attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'planner', 'agent.run.id': runId, 'agent.depth': 0 } });
      const child = record(initech, {
        at: t + 1000,
        durationMs: 15_000,
        name: 'invoke_agent researcher',
        parent: trace.setSpan(ROOT_CONTEXT, root),
        attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'researcher', 'agent.run.id': runId, 'agent.depth': 1 },
      });
      const grandchild = record(initech, {
        at: t + 2000,
        durationMs: 8_000,
        name: 'invoke_agent summarizer',
        parent: trace.setSpan(ROOT_CONTEXT, child),
        attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'summarizer', 'agent.run.id': runId, 'agent.depth': 2 },
      });
      record(initech, { at: t + 2500, durationMs: 2_500, parent: trace.setSpan(ROOT_CONTEXT, grandchild), attributes: chat(runId, 'claude-sonnet-4-5', 'anthropic', 3000, 800, { 'agent.depth': 2 }) });
      record(initech, { at: t + 6000, durationMs: 300, parent: trace.setSpan(ROOT_CONTEXT, grandchild), attributes: { ...tool(runId, 'read_file'), 'agent.depth': 2 } });
      if (m === 24) {
        // a daily quota exhausted: retry tomorrow
        record(initech, {
          at: t + 7000,
          durationMs: 60,
          parent: trace.setSpan(ROOT_CONTEXT, grandchild),
          attributes: { ...chat(runId, 'gpt-4o', 'openai', 0, 0), 'http.response.status_code': 429, 'error.type': 'insufficient_quota', 'retry-after': '86400' },
          error: 'You exceeded your current quota',
        });
      }
    }
  }
  for (const r of [acme, globex, initech]) await post(service, r);
}

/** A burst now: acme's loop trips its run and tenant breakers through the real decision path. */
async function seedBurst(service: Service, now: number): Promise<void> {
  const acme = recorder(TENANTS.runaway);
  for (let i = 0; i < 40; i++) {
    record(acme, { at: now - 20_000 + i * 400, durationMs: 150, attributes: tool('acme-loop', 'search_web') });
    if (i % 4 === 0) record(acme, { at: now - 20_000 + i * 400 + 200, durationMs: 1200, attributes: chat('acme-loop', 'gpt-4o', 'openai', 12_000, 2_000, quota(40, 500, 15_000, 200_000)) });
  }
  await post(service, acme);
  const globex = recorder(TENANTS.healthy);
  // globex is busy but under its thresholds (~60 % of its tenant token velocity), its own OpenAI key
  // at 76 % of the request quota, and Anthropic failing one call in five
  for (let i = 0; i < 6; i++) {
    record(globex, {
      at: now - 30_000 + i * 4000,
      durationMs: 900,
      attributes: { ...chat('globex-live', 'gpt-4o-mini', 'openai', 10_000, 2_000, quota(120, 500, 120_000, 200_000)), 'gen_ai.provider.key': 'openai-globex' },
    });
  }
  for (let i = 0; i < 20; i++) {
    const failed = i % 5 === 0;
    record(globex, {
      at: now - 40_000 + i * 1500,
      durationMs: failed ? 200 : 1500,
      attributes: { ...chat('globex-live', 'claude-sonnet-4-5', 'anthropic', failed ? 0 : 50, failed ? 0 : 10), ...(failed ? { 'http.response.status_code': 500, 'error.type': '500' } : {}) },
      ...(failed ? { error: 'Internal Server Error' } : {}),
    });
  }
  // ...and slow: a quarter of its model calls in the last minutes took 26 s (under its 30 s latency SLO)
  for (let i = 0; i < 8; i++) record(globex, { at: now - 60_000 + i * 1000, durationMs: 26_000, attributes: chat('globex-live', 'claude-sonnet-4-5', 'anthropic', 100, 20) });
  await post(service, globex);
  // spans without a tenant are rejected (and counted as such in the self-metrics)
  const anonymous = recordingTracer({ 'service.name': 'no-tenant' });
  for (let i = 0; i < 20; i++) anonymous.tracer.startSpan('orphan').end();
  await fetch(`${service.otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf' },
    body: Buffer.from(ProtobufTraceSerializer.serializeRequest(anonymous.finished())!),
  });
}

/** Audit events the decision path does not produce on its own in a test: degradation, escalation, operator actions, an integrity finding. */
async function seedAudit(service: Service, now: number): Promise<void> {
  const { audit } = service.core;
  // as src/degradation/degradation-events.ts records them
  await audit.append({
    tenantId: TENANTS.healthy,
    kind: 'degradation',
    eventTime: now - 12 * MINUTE,
    scope: 'MODEL',
    metric: 'failureRate',
    threshold: 0.5,
    observed: 0.6,
    oldState: 'TIER_0',
    newState: 'TIER_1',
    actor: 'breakwater',
    reason: 'degraded from tier 0 (anthropic/claude-sonnet-4-5) to tier 1 (openai/gpt-4o-mini): anthropic failing',
    details: {
      event: 'tier_change',
      cause: 'degrade',
      from: { tier: 0, provider: 'anthropic', model: 'claude-sonnet-4-5' },
      to: { tier: 1, provider: 'openai', model: 'gpt-4o-mini' },
      degraded: true,
      probing: false,
    },
  });
  await audit.append({
    tenantId: TENANTS.healthy,
    kind: 'breaker_transition',
    eventTime: now - 12 * MINUTE - 500,
    scope: 'MODEL',
    metric: 'failingTenants',
    observed: 2,
    oldState: 'CLOSED',
    newState: 'OPEN',
    actor: 'breakwater',
    reason: 'anthropic/claude-sonnet-4-5: 2 tenants over the failure rate threshold (50 %) on their own calls; open for 30000 ms',
    details: { event: 'health_transition', cause: 'failure_rate', provider: 'anthropic', model: 'claude-sonnet-4-5', shared: true, rates: { failingTenants: 2 } },
  });
  await audit.append({
    tenantId: TENANTS.runaway,
    kind: 'escalation',
    eventTime: now - 2 * MINUTE,
    actor: 'breakwater',
    reason: '3 trips within an hour: needs a human',
    threshold: 3,
    observed: 3,
  });
  await audit.append({
    tenantId: TENANTS.agents,
    kind: 'operator_action',
    eventTime: now - 30 * MINUTE,
    scope: 'TENANT',
    oldState: 'CLOSED',
    newState: 'FORCED_OPEN',
    actor: 'sre@example.com',
    reason: 'maintenance of the planner agent',
  });
  await audit.append({
    tenantId: TENANTS.agents,
    kind: 'operator_action',
    eventTime: now - 25 * MINUTE,
    scope: 'TENANT',
    oldState: 'FORCED_OPEN',
    newState: 'CLOSED',
    actor: 'sre@example.com',
    reason: 'reset by sre@example.com',
  });
  // breakers opened long ago: initech's run still open, hooli's closed again
  for (const [tenantId, runId, openedAt, closedAt] of [[TENANTS.agents, STUCK_RUN, now - 40 * MINUTE, undefined], [RECOVERED_TENANT, 'hooli-flaky', now - 180 * MINUTE, now - 170 * MINUTE]] as const) {
    await audit.append({
      tenantId,
      kind: 'breaker_transition',
      eventTime: openedAt,
      scope: 'RUN',
      runId,
      metric: 'toolCallsPerMinute',
      threshold: 30,
      observed: 45,
      oldState: 'CLOSED',
      newState: 'OPEN',
      actor: 'breakwater',
      reason: `run ${runId} exceeded its threshold`,
    });
    if (closedAt !== undefined) {
      await audit.append({ tenantId, kind: 'breaker_transition', eventTime: closedAt, scope: 'RUN', runId, oldState: 'HALF_OPEN', newState: 'CLOSED', actor: 'breakwater', reason: 'probe steps passed' });
    }
  }
  // as src/audit/audit-integrity.ts records a finding at start
  await audit.append({
    tenantId: TENANTS.agents,
    kind: 'audit_integrity',
    eventTime: now - 3 * MINUTE,
    actor: 'breakwater',
    reason: 'event 4, anchored by signed checkpoint #1, is missing: deleted',
    details: { checkpoint: 1, anchoredSeq: 4 },
  });
}

/** Seeds everything; resolves once the spans are stored and the breaker trips are audited. */
export async function seedTraffic(service: Service, now = Date.now()): Promise<void> {
  await seedHistory(service, now);
  await seedAudit(service, now);
  await seedBurst(service, now);
  await waitForTrips(service, TENANTS.runaway);
}

async function waitForTrips(service: Service, tenantId: string): Promise<void> {
  // Transitions are audited without the decision path waiting for it.
  for (let i = 0; i < 250; i++) {
    const events = await service.core.audit.list(tenantId, { kinds: ['breaker_transition'] });
    if (events.some((e) => e.newState === 'OPEN')) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`seeding: no breaker of ${tenantId} opened`);
}
