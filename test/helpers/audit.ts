import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { AuditLog, type AuditLogOptions } from '../../src/audit/audit-log.js';
import { ClickHouseAuditStore } from '../../src/storage/repositories/clickhouse-audit-store.js';

/** An audit log on `client` with a write-ahead log of its own (a fresh temporary directory unless given). */
export async function openAuditLog(client: ClickHouseClient, options: Partial<AuditLogOptions> = {}): Promise<AuditLog> {
  const walDir = options.walDir ?? mkdtempSync(join(tmpdir(), 'bw-audit-wal-'));
  const { log } = await AuditLog.open(new ClickHouseAuditStore(client), { ...options, walDir });
  return log;
}
