// Span factory, a controllable clock and a real embedded store for the degradation tests.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentSpan } from '../../src/contracts/agent-span.js';
import { blankAgentSpan } from '../helpers/agent-span.js';
import type { KeyValue } from '../../src/codecs/otlp-model.js';
import { degradationSectionSchema, type DegradationSection } from '../../src/degradation/degradation-schema.js';
import { openStore, type Store } from '../../src/storage/clickhouse.js';
import { migrate } from '../../src/storage/migrations.js';

/** A whole second, so window seconds are stable. */
export const T0 = Date.UTC(2026, 3, 1, 12, 0, 0);

export class Clock {
  constructor(public ms = T0) {}
  readonly now = (): number => this.ms;
  advance(deltaMs: number): void {
    this.ms += deltaMs;
  }
}

export interface SpanInit extends Partial<AgentSpan> {
  /** end time, epoch ms (default: the clock's now, or T0) */
  endMs?: number;
  /** duration, ms (default 200) */
  durationMs?: number;
  /** extra span attributes */
  attrs?: Record<string, string | number | boolean>;
}

let nextSpan = 1;

function nanos(ms: number): bigint {
  return BigInt(Math.round(ms * 1000)) * 1000n;
}

export function span(init: SpanInit = {}): AgentSpan {
  const { endMs = T0, durationMs = 200, attrs = {}, ...rest } = init;
  const spanAttributes: KeyValue[] = Object.entries(attrs).map(([key, value]) => ({ key, value }));
  const id = (nextSpan++).toString(16).padStart(16, '0');
  return blankAgentSpan({
    tenantId: 't1',
    runId: 'r1',
    traceId: '1'.repeat(32),
    spanId: id,
    name: 'chat',
    kind: 3,
    startTimeUnixNano: nanos(endMs - durationMs),
    endTimeUnixNano: nanos(endMs),
    serviceName: 'agent',
    spanAttributes,
    operation: 'chat',
    provider: 'openai',
    requestModel: 'gpt-4o',
    inputTokens: 100,
    outputTokens: 50,
    httpStatusCode: 200,
    ...rest,
  });
}

/** A failed call: 5xx by default. */
export function failed(init: SpanInit = {}): AgentSpan {
  return span({ httpStatusCode: 503, errorType: '503', isError: true, statusCode: 2, outputTokens: 0, ...init });
}

/** A rate-limited call. */
export function limited(init: SpanInit = {}): AgentSpan {
  return span({ httpStatusCode: 429, errorType: 'rate_limit_exceeded', isError: true, statusCode: 2, inputTokens: 0, outputTokens: 0, ...init });
}

export function section(raw: unknown): DegradationSection {
  return degradationSectionSchema.parse(raw);
}

/** One embedded store per test file (chdb binds one data directory per process). */
export async function openTestStore(prefix: string): Promise<{ store: Store; close: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir });
  await migrate(store.client);
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
