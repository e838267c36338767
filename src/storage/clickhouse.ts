import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { embeddedOpenError, isUnreachable, StorageError } from './storage-error.js';
import { noteNodeThreads } from './storage-thread-priority.js';

type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];

export interface StoreOptions {
  /** unset = embedded ClickHouse (chdb) in dataDir */
  url: string | undefined;
  user: string;
  password: string;
  database: string;
  dataDir: string;
  /** server mode: how long one request may take (default 30000) */
  timeoutMs?: number;
  /** server mode: how long start-up keeps retrying an unreachable server (default 30000) */
  startupWaitMs?: number;
  /** told about each retry while the server is unreachable at start */
  onUnreachable?: (retryInMs: number, error: unknown) => void;
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
  if (options.url === undefined) return openEmbedded(resolve(options.dataDir));
  return openServer({ ...options, ...credentialsFromUrl(options.url) });
}

async function openServer(options: StoreOptions & { url: string }): Promise<Store> {
  await ensureServerDatabase(options);
  const client = createClient({
    url: options.url,
    username: options.user,
    password: options.password,
    database: options.database,
    request_timeout: options.timeoutMs ?? 30_000,
    clickhouse_settings: { date_time_input_format: 'best_effort' },
    // failures reach the caller as errors; the client's own console lines would repeat them
    log: { level: ClickHouseLogLevel.OFF },
  });
  return { client, mode: 'server', location: withoutCredentials(options.url), close: () => client.close() };
}

// chdb is loaded only here, so server mode runs where chdb's native library is not installed.
async function openEmbedded(dataDir: string): Promise<Store> {
  const [{ drainPending }, { createChdbConnection }] = await Promise.all([import('chdb'), import('chdb/connection')]).catch((error: unknown) => {
    throw new StorageError(
      `the embedded ClickHouse (chdb) cannot be loaded on ${process.platform}-${process.arch} (${(error as Error).message.split('\n')[0]}): install its library for this machine with \`npm install --no-save ${chdbLibraryPackage()}\` (builds exist for linux x64/arm64 and macOS x64/arm64), or use a ClickHouse server with --clickhouse-url (CLICKHOUSE_URL)`,
      { cause: error },
    );
  });
  let connection: ReturnType<typeof createChdbConnection>;
  try {
    mkdirSync(dataDir, { recursive: true });
    noteNodeThreads();
    connection = createChdbConnection({ path: dataDir });
  } catch (error) {
    throw embeddedOpenError(dataDir, error);
  }
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

/** chdb's per-platform library package, as chdb's optionalDependencies name them. */
function chdbLibraryPackage(): string {
  return `@chdb/lib-${process.platform}-${process.arch}${process.platform === 'linux' ? '-gnu' : ''}`;
}

/** Creates the database, retrying with backoff while the server cannot be reached (it may be starting too). */
async function ensureServerDatabase(options: StoreOptions & { url: string }): Promise<void> {
  const admin = createClient({ url: options.url, username: options.user, password: options.password, request_timeout: options.timeoutMs ?? 30_000, log: { level: ClickHouseLogLevel.OFF } });
  const deadline = Date.now() + (options.startupWaitMs ?? 30_000);
  try {
    for (let delayMs = 250; ; delayMs = Math.min(delayMs * 2, 4_000)) {
      try {
        // The name is validated as an identifier by the config; DDL cannot bind identifiers portably.
        await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${options.database}` });
        return;
      } catch (error) {
        const where = withoutCredentials(options.url);
        if (!isUnreachable(error)) throw new StorageError(`ClickHouse at ${where} refused to start Breakwater: ${(error as Error).message} (check --clickhouse-user, --clickhouse-password, --clickhouse-database)`, { cause: error });
        const left = deadline - Date.now();
        if (left <= 0) throw new StorageError(`ClickHouse at ${where} is unreachable (${(error as Error).message}); check --clickhouse-url (CLICKHOUSE_URL), or unset it for the embedded engine`, { cause: error });
        options.onUnreachable?.(Math.min(delayMs, left), error);
        await sleep(Math.min(delayMs, left));
      }
    }
  } finally {
    await admin.close();
  }
}

/** Credentials in the URL win over the flags, as the client has it, without its warning on every start. */
function credentialsFromUrl(address: string): { url: string; user?: string; password?: string } {
  const url = new URL(address);
  if (url.username === '' && url.password === '') return { url: address };
  return { url: withoutCredentials(address), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
}

function withoutCredentials(address: string): string {
  const url = new URL(address);
  url.username = '';
  url.password = '';
  return url.toString();
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
