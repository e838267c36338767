import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import { queryRows } from './clickhouse.js';

export interface Migration {
  version: number;
  name: string;
  statements: string[];
  checksum: string;
}

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema', 'clickhouse');

const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

/** Reads `NNN_name.sql` files in version order; statements are separated by `;` at a line end. */
export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .map((file) => ({ file, match: FILE_PATTERN.exec(file) }))
    .filter((f): f is { file: string; match: RegExpExecArray } => f.match !== null)
    .map(({ file, match }) => {
      const text = readFileSync(join(dir, file), 'utf8');
      return {
        version: Number(match[1]),
        name: match[2] as string,
        statements: splitStatements(text),
        checksum: createHash('sha256').update(text).digest('hex'),
      };
    })
    .sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      throw new Error(`two migrations share version ${migrations[i]!.version} in ${dir}`);
    }
  }
  return migrations;
}

export function splitStatements(sql: string): string[] {
  const withoutComments = sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return withoutComments
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export interface MigrationResult {
  applied: number[];
  alreadyApplied: number[];
}

/**
 * Applies the migrations not yet recorded in `breakwater_migrations`. Every statement is written to
 * be idempotent (IF NOT EXISTS), so a run interrupted between a statement and its record is safe to
 * repeat. A recorded migration whose file changed since is an error: schemas are append-only.
 */
export async function migrate(client: ClickHouseClient, migrations = readMigrations()): Promise<MigrationResult> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS breakwater_migrations
      (Version UInt32, Name String, Checksum String, AppliedAt DateTime64(3) DEFAULT now64(3))
      ENGINE = ReplacingMergeTree ORDER BY Version`,
  });
  const recorded = new Map(
    (await queryRows<{ Version: number; Checksum: string }>(client, 'SELECT Version, Checksum FROM breakwater_migrations FINAL')).map(
      (r) => [Number(r.Version), r.Checksum],
    ),
  );
  const result: MigrationResult = { applied: [], alreadyApplied: [] };
  for (const migration of migrations) {
    const checksum = recorded.get(migration.version);
    if (checksum !== undefined) {
      if (checksum !== migration.checksum) {
        throw new Error(
          `migration ${migration.version}_${migration.name} was applied with different contents; add a new migration instead of editing it`,
        );
      }
      result.alreadyApplied.push(migration.version);
      continue;
    }
    for (const statement of migration.statements) await client.command({ query: statement });
    await client.insert({
      table: 'breakwater_migrations',
      values: [{ Version: migration.version, Name: migration.name, Checksum: migration.checksum }],
      format: 'JSONEachRow',
    });
    result.applied.push(migration.version);
  }
  return result;
}

/** True when every migration on disk is recorded: part of readiness. */
export async function migrationsApplied(client: ClickHouseClient, migrations = readMigrations()): Promise<boolean> {
  const rows = await queryRows<{ Version: number }>(client, 'SELECT Version FROM breakwater_migrations FINAL');
  const versions = new Set(rows.map((r) => Number(r.Version)));
  return migrations.every((m) => versions.has(m.version));
}

/**
 * Retention is a setting, not a migration: the spans TTL follows BREAKWATER_RETENTION_DAYS at start.
 * `days` is a validated integer; TTL expressions cannot take bound parameters.
 */
export async function applyRetention(client: ClickHouseClient, days: number): Promise<void> {
  if (!Number.isInteger(days) || days < 1) throw new Error(`retention must be a positive integer of days, got ${days}`);
  const rows = await queryRows<{ create_table_query: string }>(
    client,
    'SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = {name:String}',
    { name: 'spans' },
  );
  const wanted = `toIntervalDay(${days})`;
  if (rows[0]?.create_table_query.includes(wanted)) return;
  await client.command({ query: `ALTER TABLE spans MODIFY TTL toDateTime(StartTime) + toIntervalDay(${days})` });
}
