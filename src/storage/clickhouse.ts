import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';

type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];
import { drainPending } from 'chdb';
import { createChdbConnection } from 'chdb/connection';
import { noteNodeThreads } from './storage-thread-priority.js';

export interface StoreOptions {
  /** unset = embedded ClickHouse (chdb) in dataDir */
  url: string | undefined;
  user: string;
  password: string;
  database: string;
  dataDir: string;
  /** server mode: how long one request may take (default 30000) */
  timeoutMs?: number;
}

export interface Store {
  client: ClickHouseClient;
  mode: 'embedded' | 'server';
  /** where the data lives: the data directory or the server URL without credentials */
  location: string;
  close(): Promise<void>;
}

/**
 * One client for both modes: the embedded engine plugs into @clickhouse/client's connection hook,
 * so every query, insert and migration below is the same code against either.
 * Embedded mode uses the engine's `default` database: the data directory is already Breakwater's own.
 */
export async function openStore(options: StoreOptions): Promise<Store> {
  if (options.url === undefined) {
    const dataDir = resolve(options.dataDir);
    mkdirSync(dataDir, { recursive: true });
    noteNodeThreads();
    const connection = createChdbConnection({ path: dataDir });
    // chdb types its connection against @clickhouse/client-common, which the client no longer
    // bundles under that name; the shapes match at run time (chdb's parity suite checks it).
    const client = createClient({ connection: connection as unknown as NonNullable<ClientConnection> });
    const close = async () => {
      await client.close();
      // close() can return while the engine still tears the connection down; wait for it.
      await drainPending();
    };
    return { client, mode: 'embedded', location: dataDir, close };
  }
  await ensureServerDatabase(options);
  const client = createClient({
    url: options.url,
    username: options.user,
    password: options.password,
    database: options.database,
    request_timeout: options.timeoutMs ?? 30_000,
    clickhouse_settings: { date_time_input_format: 'best_effort' },
  });
  const url = new URL(options.url);
  url.username = '';
  url.password = '';
  return { client, mode: 'server', location: url.toString(), close: () => client.close() };
}

async function ensureServerDatabase(options: StoreOptions): Promise<void> {
  const admin = createClient({ url: options.url, username: options.user, password: options.password, request_timeout: options.timeoutMs ?? 30_000 });
  try {
    // The name is validated as an identifier by the config; DDL cannot bind identifiers portably.
    await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${options.database}` });
  } finally {
    await admin.close();
  }
}

/** Reads a whole result as typed rows (JSONEachRow). */
export async function queryRows<T>(
  client: ClickHouseClient,
  query: string,
  params: Record<string, unknown> = {},
): Promise<T[]> {
  const result = await client.query({ query, query_params: params, format: 'JSONEachRow' });
  return result.json<T>();
}
