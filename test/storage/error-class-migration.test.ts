// Migration 007 on a database that already holds spans: old rows read an ErrorClass from their status
// and error flag, new rows carry the classifier's, and the rollup counts both by the same column.

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
  dataDir = mkdtempSync(join(tmpdir(), 'bw-errclass-'));
  store = await openStore({ url: undefined, user: 'default', password: '', database: 'breakwater', dataDir });
});

afterAll(async () => {
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A span ending now: the table's TTL drops parts older than its retention. */
function at(init: Parameters<typeof span>[0]): AgentSpan {
  return span({ endMs: Date.now(), ...init });
}

async function insert(spans: AgentSpan[], withClass: boolean): Promise<void> {
  const values = spans.map((s) => {
    const row = spanRow(s, 0);
    if (!withClass) {
      delete row.ErrorClass;
      delete row.ToolCalls;
    }
    return row;
  });
  await store.client.insert({ table: 'spans', values, format: 'JSONEachRow' });
}

describe('migration 007_error_class', () => {
  it('classes rows stored before it, and rolls up 429s and failures apart from errors', async () => {
    await migrate(store.client, readMigrations().filter((m) => m.version < 7));
    await insert(
      [
        at({ tenantId: 'old', spanId: 'a1', httpStatusCode: 429, isError: true, errorType: 'rate_limit_exceeded' }),
        at({ tenantId: 'old', spanId: 'a2', httpStatusCode: 503, isError: true, errorType: '503' }),
        at({ tenantId: 'old', spanId: 'a3', httpStatusCode: 0, isError: true, errorType: 'ValueError' }),
        at({ tenantId: 'old', spanId: 'a4' }),
      ],
      false,
    );
    expect((await migrate(store.client)).applied).toEqual([7, 8]);
    await insert(
      [
        at({ tenantId: 'new', spanId: 'b1', httpStatusCode: 0, isError: true, errorType: 'RateLimitError' }),
        at({ tenantId: 'new', spanId: 'b2', httpStatusCode: 0, isError: true, errorType: '_OTHER', statusMessage: 'Error code: 529 - Overloaded' }),
        at({ tenantId: 'new', spanId: 'b3', httpStatusCode: 0, isError: true, errorType: 'ValueError' }),
        at({ tenantId: 'new', spanId: 'b4' }),
      ],
      true,
    );

    const classes = await queryRows<{ SpanId: string; ErrorClass: string }>(store.client, 'SELECT SpanId, ErrorClass FROM spans ORDER BY SpanId');
    expect(classes.map((r) => `${r.SpanId}:${r.ErrorClass}`)).toEqual([
      'a1:rate_limited',
      'a2:provider_error',
      'a3:other_error',
      'a4:ok',
      'b1:rate_limited',
      'b2:provider_error',
      'b3:other_error',
      'b4:ok',
    ]);
    const rollup = await queryRows<{ TenantId: string; Errors: number; RateLimited: number; ProviderErrors: number }>(
      store.client,
      "SELECT TenantId, toUInt32(sum(Errors)) AS Errors, toUInt32(sum(RateLimited)) AS RateLimited, toUInt32(sum(ProviderErrors)) AS ProviderErrors FROM spans_tenant_minute WHERE TenantId = 'new' GROUP BY TenantId",
    );
    // the 429 named only by error.type is no error; the 529 named only in the text is a failure
    expect(rollup).toEqual([{ TenantId: 'new', Errors: 2, RateLimited: 1, ProviderErrors: 1 }]);
  });
});
