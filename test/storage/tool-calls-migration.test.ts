// Migration 008 on a database that already holds spans: rows stored before it read one tool call
// per tool span, new rows carry the normalizer's count (a model span's requested tool calls), and
// the rollup sums the column.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentSpan } from '../../src/contracts/agent-span.js';
import { openStore, queryRows, type Store } from '../../src/storage/clickhouse.js';
import { migrate, readMigrations } from '../../src/storage/migrations.js';
import { spanRow } from '../../src/storage/span-rows.js';
import { span } from '../degradation/helpers.js';

let store: Store;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'bw-toolcalls-'));
  store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir });
});

afterAll(async () => {
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A span ending now: the table's TTL drops parts older than its retention. */
const at = (init: Parameters<typeof span>[0]): AgentSpan => span({ endMs: Date.now(), ...init });

async function insert(spans: AgentSpan[], withToolCalls: boolean): Promise<void> {
  const values = spans.map((s) => {
    const row = spanRow(s, 0);
    if (!withToolCalls) delete row.ToolCalls;
    return row;
  });
  await store.client.insert({ table: 'spans', values, format: 'JSONEachRow' });
}

describe('migration 008_tool_calls', () => {
  it('counts old tool spans as one call each and new model spans by their requested calls, in the rollup too', async () => {
    await migrate(store.client, readMigrations().filter((m) => m.version < 8));
    await insert([at({ tenantId: 'old', spanId: 'a1', operation: 'execute_tool', toolName: 'search' }), at({ tenantId: 'old', spanId: 'a2' })], false);
    expect((await migrate(store.client)).applied).toEqual([8]);
    await insert([at({ tenantId: 'new', spanId: 'b1', toolCalls: 2, toolName: 'search,fetch' }), at({ tenantId: 'new', spanId: 'b2', operation: 'execute_tool', toolCalls: 1 })], true);

    const rows = await queryRows<{ SpanId: string; ToolCalls: number }>(store.client, 'SELECT SpanId, ToolCalls FROM spans ORDER BY SpanId');
    expect(rows.map((r) => `${r.SpanId}:${r.ToolCalls}`)).toEqual(['a1:1', 'a2:0', 'b1:2', 'b2:1']);
    const rollup = await queryRows<{ TenantId: string; ToolCalls: number }>(
      store.client,
      "SELECT TenantId, toUInt32(sum(ToolCalls)) AS ToolCalls FROM spans_tenant_minute WHERE TenantId = 'new' GROUP BY TenantId",
    );
    expect(rollup).toEqual([{ TenantId: 'new', ToolCalls: 3 }]);
  });
});
