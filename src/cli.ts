#!/usr/bin/env -S node --max-semi-space-size=64 --no-memory-reducer
import { readFileSync } from 'node:fs';
import { closestName } from './app/closest-name.js';
import { ConfigError, configHelp, loadConfig, type ServiceConfig } from './app/config.js';
import { createLogger } from './app/log.js';
import { SecretError } from './api/secrets.js';
import { PolicyError } from './policy/policy-error.js';
import { startService, storeOptions, type Service } from './app/service.js';
import { openStore } from './storage/clickhouse.js';
import { StorageError } from './storage/storage-error.js';
import { applyRetention, migrate } from './storage/migrations.js';

const USAGE = `breakwater: a per-tenant circuit breaker and observability plane for AI agents

Usage:
  breakwater serve   [flags]   run the OTLP receiver (:4318) and the API (:4000); applies migrations first
  breakwater migrate [flags]   apply ClickHouse migrations and exit
  breakwater demo    [--keep-running]   self-contained demo: four tenants' simulated agents, one runs away and is halted
  breakwater --help            this text
  breakwater --version         the version

Storage: CLICKHOUSE_URL unset = embedded ClickHouse in --data-dir; set = that server.
`;

const COMMANDS = ['serve', 'migrate', 'demo', 'help'];

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`breakwater ${packageVersion()}\n`);
    return 0;
  }
  if (command === 'demo') return demo(rest);
  if (command === undefined || command === '--help' || command === '-h' || command === 'help' || rest.includes('--help')) {
    process.stdout.write(`${USAGE}\n${configHelp()}\n`);
    return command === undefined ? 2 : 0;
  }
  if (!COMMANDS.includes(command)) {
    const closest = closestName(command.replace(/^-+/, ''), COMMANDS);
    process.stderr.write(`breakwater: unknown command ${JSON.stringify(command)}${closest === undefined ? '' : ` (did you mean ${closest}?)`}\n\n${USAGE}`);
    return 2;
  }
  let config: ServiceConfig;
  try {
    config = loadConfig(rest, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`breakwater: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  return command === 'serve' ? serve(config) : runMigrate(config);
}

/** The listener that could not bind, named by its flag, or undefined for another error. */
function portInUse(err: unknown, config: ServiceConfig): string | undefined {
  const { code, port, address } = err as { code?: string; port?: number; address?: string };
  if (code !== 'EADDRINUSE' && code !== 'EACCES') return undefined;
  const setting =
    port === config.otlpPort ? '--otlp-port (BREAKWATER_OTLP_PORT)'
    : port === config.graphqlPort ? '--graphql-port (BREAKWATER_GRAPHQL_PORT)'
    : port === config.gatewayPort ? '--gateway-port (BREAKWATER_GATEWAY_PORT)'
    : '--otlp-port, --graphql-port or --gateway-port';
  const what = code === 'EADDRINUSE' ? 'is already in use (another Breakwater?)' : 'may not be bound by this user';
  return `${address ?? config.host}:${port} ${what}: stop what holds it, or choose another ${setting}`;
}

function packageVersion(): string {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return version;
}

async function serve(config: ServiceConfig): Promise<number> {
  const log = createLogger(config.logLevel);
  let service: Service;
  try {
    service = await startService(config, log);
  } catch (err) {
    // A configuration the operator can fix: say what, without a stack trace.
    if (err instanceof ConfigError || err instanceof PolicyError || err instanceof SecretError || err instanceof StorageError) {
      process.stderr.write(`breakwater: ${err.message}\n`);
      return 2;
    }
    const inUse = portInUse(err, config);
    if (inUse !== undefined) {
      process.stderr.write(`breakwater: ${inUse}\n`);
      return 2;
    }
    throw err;
  }
  return new Promise((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal, deadlineMs: config.shutdownTimeoutMs }, 'stopping: no new requests, flushing accepted spans and audit events');
      // A second signal means now: whatever is not written stays in the write-ahead log.
      const now = (again: string) => {
        log.warn({ signal: again }, 'second signal: exiting now');
        resolve(1);
      };
      process.once('SIGTERM', () => now('SIGTERM'));
      process.once('SIGINT', () => now('SIGINT'));
      setTimeout(() => {
        log.error({ deadlineMs: config.shutdownTimeoutMs }, 'shutdown did not finish after its deadline; exiting');
        resolve(1);
      }, config.shutdownTimeoutMs + 5_000).unref();
      service.stop().then(
        () => resolve(0),
        (err) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

async function demo(argv: readonly string[]): Promise<number> {
  const { DEMO_USAGE, parseDemoArgs, runDemo } = await import('./demo/demo.js');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  const options = parseDemoArgs(argv);
  if (typeof options === 'string') {
    process.stderr.write(`breakwater: ${options}`);
    return 2;
  }
  return runDemo(options);
}

async function runMigrate(config: ServiceConfig): Promise<number> {
  const log = createLogger(config.logLevel);
  const store = await openStore(storeOptions(config, log));
  try {
    const result = await migrate(store.client);
    await applyRetention(store.client, config.retentionDays);
    log.info({ mode: store.mode, applied: result.applied, alreadyApplied: result.alreadyApplied }, 'migrations applied');
    return 0;
  } finally {
    await store.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`breakwater: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
