// Service configuration: command-line flags over BREAKWATER_* / CLICKHOUSE_* environment variables
// over defaults, validated up front (as the OpenTelemetry Collector validates its Config) so a bad
// value stops the process with a message naming the flag and the variable.

import { closestName } from './closest-name.js';

export interface ServiceConfig {
  host: string;
  otlpPort: number;
  graphqlPort: number;
  gatewayPort: number;
  gatewayOpenaiUrl: string;
  gatewayAnthropicUrl: string;
  gatewayUpstreamTimeoutMs: number;
  dataDir: string;
  /** unset = embedded ClickHouse (chdb) under dataDir */
  clickhouseUrl: string | undefined;
  clickhouseUser: string;
  clickhousePassword: string;
  clickhouseDatabase: string;
  /** how long one ClickHouse request may take before it fails (server mode) */
  clickhouseTimeoutMs: number;
  /** how long start-up keeps retrying a ClickHouse server it cannot reach */
  clickhouseStartupWaitMs: number;
  policyFile: string;
  /** the policy file was named explicitly (a missing explicit file is an error) */
  policyFileExplicit: boolean;
  /** limit on an OTLP body, compressed and decompressed */
  maxBodyBytes: number;
  /** attributes kept per span, resource, scope, event and link (the rest dropped and counted) */
  maxAttributes: number;
  /** attribute entries one request may have stored, a resource's once per span */
  maxRequestAttributes: number;
  /** bytes of attributes one request may have stored, a resource's once per span */
  maxRequestAttributeBytes: number;
  retentionDays: number;
  tenantQueueSharePercent: number;
  allowAuthRemoval: boolean;
  batchMaxSpans: number;
  batchMaxDelayMs: number;
  /** spans waiting for ClickHouse; past it the receiver answers 503 with Retry-After */
  queueMaxSpans: number;
  /** answer OTLP requests once durable in a local write-ahead file, committing to ClickHouse behind the answer */
  ingestWal: boolean;
  /** bytes of requests the ingest write-ahead file holds uncommitted before ingest answers 503 */
  ingestWalMaxBytes: number;
  /** reject spans without tenant.id in partial_success (the default) instead of filing them under '' */
  requireTenant: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** allow listening on a non-loopback address without auth tokens */
  insecure: boolean;
  graphqlIntrospection: boolean;
  maxSubscriptionsPerConnection: number;
  maxSubscriptionsPerToken: number;
  /** spans per second each tenant may send (0 = unlimited), with a burst of 5 seconds' worth */
  tenantIngestRate: number;
  unknownTenantIngestRate: number;
  maxUnknownTenants: number;
  /** runs one tenant's windows may hold; its new runs past it are refused in partial_success */
  maxRunsPerTenant: number;
  /** nice value for the embedded ClickHouse's threads, so the decision path wins the CPU (0 = leave them) */
  storageNice: number;
  /** time a client has to send its request headers before the connection is closed (408) */
  headersTimeoutMs: number;
  /** time a client has to send its whole request, body included (408) */
  requestTimeoutMs: number;
  /** how long SIGTERM waits for accepted spans and audit events to be written before exiting */
  shutdownTimeoutMs: number;
  /** file holding the key that signs audit checkpoints (BREAKWATER_AUDIT_KEY wins; unset = generated in dataDir) */
  auditKeyFile: string | undefined;
  /** how often the tenants' audit chain heads are checkpointed and signed */
  auditCheckpointIntervalMs: number;
}

interface Setting {
  key: keyof ServiceConfig;
  flag: string;
  env: string;
  kind: 'string' | 'port' | 'int' | 'bool' | 'level';
  default: string | undefined;
  help: string;
  /** lower bound for int settings */
  min?: number;
  /** upper bound for int settings */
  max?: number;
}

export const SETTINGS: readonly Setting[] = [
  { key: 'host', flag: 'host', env: 'BREAKWATER_HOST', kind: 'string', default: '127.0.0.1', help: 'address both listeners bind' },
  { key: 'otlpPort', flag: 'otlp-port', env: 'BREAKWATER_OTLP_PORT', kind: 'port', default: '4318', help: 'OTLP/HTTP receiver port (/v1/traces)' },
  { key: 'graphqlPort', flag: 'graphql-port', env: 'BREAKWATER_GRAPHQL_PORT', kind: 'port', default: '4000', help: 'GraphQL, health and metrics port' },
  { key: 'gatewayPort', flag: 'gateway-port', env: 'BREAKWATER_GATEWAY_PORT', kind: 'port', default: '4001', help: 'model gateway port (OpenAI /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/models; Anthropic /v1/messages)' },
  { key: 'gatewayOpenaiUrl', flag: 'gateway-openai-url', env: 'BREAKWATER_GATEWAY_OPENAI_URL', kind: 'string', default: 'https://api.openai.com', help: 'upstream of the gateway\'s OpenAI endpoints (its key: OPENAI_API_KEY)' },
  { key: 'gatewayAnthropicUrl', flag: 'gateway-anthropic-url', env: 'BREAKWATER_GATEWAY_ANTHROPIC_URL', kind: 'string', default: 'https://api.anthropic.com', help: 'upstream of the gateway\'s Anthropic endpoint (its key: ANTHROPIC_API_KEY)' },
  { key: 'gatewayUpstreamTimeoutMs', flag: 'gateway-upstream-timeout-ms', env: 'BREAKWATER_GATEWAY_UPSTREAM_TIMEOUT_MS', kind: 'int', default: '600000', min: 1, help: 'longest the gateway waits for an upstream answer, streamed answers included (then 504)' },
  { key: 'dataDir', flag: 'data-dir', env: 'BREAKWATER_DATA_DIR', kind: 'string', default: './data', help: 'embedded ClickHouse data directory' },
  { key: 'clickhouseUrl', flag: 'clickhouse-url', env: 'CLICKHOUSE_URL', kind: 'string', default: undefined, help: 'ClickHouse server URL; unset = embedded' },
  { key: 'clickhouseUser', flag: 'clickhouse-user', env: 'CLICKHOUSE_USER', kind: 'string', default: 'default', help: 'ClickHouse server user' },
  { key: 'clickhousePassword', flag: 'clickhouse-password', env: 'CLICKHOUSE_PASSWORD', kind: 'string', default: '', help: 'ClickHouse server password (prefer the env var)' },
  { key: 'clickhouseDatabase', flag: 'clickhouse-database', env: 'CLICKHOUSE_DATABASE', kind: 'string', default: 'breakwater', help: 'ClickHouse server database (created if absent; embedded uses its own data dir)' },
  { key: 'clickhouseTimeoutMs', flag: 'clickhouse-timeout-ms', env: 'CLICKHOUSE_TIMEOUT_MS', kind: 'int', default: '30000', min: 1, help: 'ClickHouse server request timeout (ms)' },
  { key: 'clickhouseStartupWaitMs', flag: 'clickhouse-startup-wait-ms', env: 'CLICKHOUSE_STARTUP_WAIT_MS', kind: 'int', default: '30000', min: 0, help: 'how long start-up retries an unreachable ClickHouse server (ms)' },
  { key: 'policyFile', flag: 'config', env: 'BREAKWATER_CONFIG', kind: 'string', default: './breakwater.yaml', help: 'policy file (YAML), reloaded on change' },
  { key: 'maxBodyBytes', flag: 'max-body-bytes', env: 'BREAKWATER_MAX_BODY_BYTES', kind: 'int', default: String(20 * 1024 * 1024), min: 1024, help: 'largest OTLP body accepted, compressed and decompressed (the OpenTelemetry Collector\'s OTLP/HTTP default)' },
  { key: 'maxAttributes', flag: 'max-attributes', env: 'BREAKWATER_MAX_ATTRIBUTES', kind: 'int', default: '128', min: 1, help: 'attributes kept per span, resource, scope, event and link; the rest are dropped and counted (those Breakwater reads are kept)' },
  { key: 'maxRequestAttributes', flag: 'max-request-attributes', env: 'BREAKWATER_MAX_REQUEST_ATTRIBUTES', kind: 'int', default: '1000000', min: 1, help: 'attributes one request may store, a resource\'s counted once per span; spans past it are rejected in partial_success' },
  { key: 'maxRequestAttributeBytes', flag: 'max-request-attribute-bytes', env: 'BREAKWATER_MAX_REQUEST_ATTRIBUTE_BYTES', kind: 'int', default: String(64 * 1024 * 1024), min: 1024, help: 'bytes of attributes one request may store, counted the same way' },
  { key: 'retentionDays', flag: 'retention-days', env: 'BREAKWATER_RETENTION_DAYS', kind: 'int', default: '30', min: 1, help: 'days spans are kept (ClickHouse TTL)' },
  { key: 'batchMaxSpans', flag: 'batch-max-spans', env: 'BREAKWATER_BATCH_MAX_SPANS', kind: 'int', default: '20000', min: 1, help: 'spans per ClickHouse insert' },
  { key: 'batchMaxDelayMs', flag: 'batch-max-delay-ms', env: 'BREAKWATER_BATCH_MAX_DELAY_MS', kind: 'int', default: '50', min: 0, help: 'longest a span waits for its batch' },
  { key: 'queueMaxSpans', flag: 'queue-max-spans', env: 'BREAKWATER_QUEUE_MAX_SPANS', kind: 'int', default: '200000', min: 1, help: 'spans waiting for ClickHouse before ingest answers 503' },
  { key: 'ingestWal', flag: 'ingest-wal', env: 'BREAKWATER_INGEST_WAL', kind: 'bool', default: 'false', help: 'answer OTLP requests once fsync\'d to <data-dir>/ingest-wal instead of once committed to ClickHouse (replayed at start)' },
  { key: 'ingestWalMaxBytes', flag: 'ingest-wal-max-bytes', env: 'BREAKWATER_INGEST_WAL_MAX_BYTES', kind: 'int', default: String(256 * 1024 * 1024), min: 1024, help: 'request bytes the ingest write-ahead file holds uncommitted before ingest answers 503' },
  { key: 'tenantQueueSharePercent', flag: 'tenant-queue-share', env: 'BREAKWATER_TENANT_QUEUE_SHARE', kind: 'int', default: '25', min: 1, max: 100, help: 'percent of the write queue one tenant may hold before its requests get 429' },
  { key: 'tenantIngestRate', flag: 'tenant-ingest-rate', env: 'BREAKWATER_TENANT_INGEST_RATE', kind: 'int', default: '50000', min: 0, help: 'spans/s per tenant before 429 (burst 5 s; 0 = unlimited)' },
  { key: 'unknownTenantIngestRate', flag: 'unknown-tenant-ingest-rate', env: 'BREAKWATER_UNKNOWN_TENANT_INGEST_RATE', kind: 'int', default: '500000', min: 0, help: 'spans/s all tenants not named in the policy share without ingest keys (burst 5 s; 0 = unlimited)' },
  { key: 'maxUnknownTenants', flag: 'max-unknown-tenants', env: 'BREAKWATER_MAX_UNKNOWN_TENANTS', kind: 'int', default: '1000', min: 1, help: 'tenants not named in the policy sending at once without ingest keys; more get 429' },
  { key: 'maxRunsPerTenant', flag: 'max-runs-per-tenant', env: 'BREAKWATER_MAX_RUNS_PER_TENANT', kind: 'int', default: '10000', min: 1, help: "runs one tenant may hold in memory (100000 in all); spans of its new runs past it are refused in partial_success" },
  { key: 'storageNice', flag: 'storage-nice', env: 'BREAKWATER_STORAGE_NICE', kind: 'int', default: '19', min: 0, max: 19, help: 'nice value (0-19) for the embedded ClickHouse threads: decisions first (0 = off)' },
  { key: 'headersTimeoutMs', flag: 'headers-timeout-ms', env: 'BREAKWATER_HEADERS_TIMEOUT_MS', kind: 'int', default: '10000', min: 100, help: 'time to send request headers before 408 (slow clients)' },
  { key: 'requestTimeoutMs', flag: 'request-timeout-ms', env: 'BREAKWATER_REQUEST_TIMEOUT_MS', kind: 'int', default: '60000', min: 100, help: 'time to send a whole request, body included, before 408' },
  { key: 'shutdownTimeoutMs', flag: 'shutdown-timeout-ms', env: 'BREAKWATER_SHUTDOWN_TIMEOUT_MS', kind: 'int', default: '10000', min: 0, help: 'on SIGTERM, longest wait for accepted spans and audit events to be written; the rest of the audit log is replayed at the next start' },
  { key: 'auditKeyFile', flag: 'audit-key-file', env: 'BREAKWATER_AUDIT_KEY_FILE', kind: 'string', default: undefined, help: 'key signing audit checkpoints (BREAKWATER_AUDIT_KEY wins; unset = generated in the data dir)' },
  { key: 'auditCheckpointIntervalMs', flag: 'audit-checkpoint-interval-ms', env: 'BREAKWATER_AUDIT_CHECKPOINT_INTERVAL_MS', kind: 'int', default: '10000', min: 100, help: 'how often audit chain heads are checkpointed and signed' },
  { key: 'requireTenant', flag: 'require-tenant', env: 'BREAKWATER_REQUIRE_TENANT', kind: 'bool', default: 'true', help: 'reject spans without tenant.id' },
  { key: 'logLevel', flag: 'log-level', env: 'BREAKWATER_LOG_LEVEL', kind: 'level', default: 'info', help: 'debug | info | warn | error | silent' },
  { key: 'graphqlIntrospection', flag: 'graphql-introspection', env: 'BREAKWATER_GRAPHQL_INTROSPECTION', kind: 'bool', default: 'true', help: 'answer schema introspection (GraphiQL needs it)' },
  { key: 'maxSubscriptionsPerConnection', flag: 'max-subscriptions-per-connection', env: 'BREAKWATER_MAX_SUBSCRIPTIONS_PER_CONNECTION', kind: 'int', default: '100', min: 1, help: 'live subscriptions one WebSocket or graphql-sse stream may hold' },
  { key: 'maxSubscriptionsPerToken', flag: 'max-subscriptions-per-token', env: 'BREAKWATER_MAX_SUBSCRIPTIONS_PER_TOKEN', kind: 'int', default: '1000', min: 1, help: 'live subscriptions one API token may hold across connections and transports' },
  { key: 'allowAuthRemoval', flag: 'allow-auth-removal', env: 'BREAKWATER_ALLOW_AUTH_REMOVAL', kind: 'bool', default: 'false', help: 'let a reloaded policy file drop every admin token, or all of a tenant\'s tokens or ingest keys' },
  { key: 'insecure', flag: 'insecure', env: 'BREAKWATER_INSECURE', kind: 'bool', default: 'false', help: 'allow a non-loopback host without auth tokens' },
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

function parseValue(setting: Setting, raw: string, source: string): unknown {
  switch (setting.kind) {
    case 'string':
      if (raw.length > 4096) throw new ConfigError(`${source}: value longer than 4096 characters`);
      return raw;
    case 'bool': {
      const v = raw.toLowerCase();
      if (['true', '1', 'yes', 'on', ''].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      throw new ConfigError(`${source}: expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'level':
      if ((LOG_LEVELS as readonly string[]).includes(raw)) return raw;
      throw new ConfigError(`${source}: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}`);
    case 'port':
    case 'int': {
      if (!/^\d{1,15}$/.test(raw)) throw new ConfigError(`${source}: expected a non-negative integer, got ${JSON.stringify(raw)}`);
      const n = Number(raw);
      if (setting.kind === 'port' && n > 65535) throw new ConfigError(`${source}: port must be 0-65535, got ${n}`);
      if (setting.min !== undefined && n < setting.min) throw new ConfigError(`${source}: must be at least ${setting.min}, got ${n}`);
      if (setting.max !== undefined && n > setting.max) throw new ConfigError(`${source}: must be at most ${setting.max}, got ${n}`);
      return n;
    }
  }
}

/**
 * Builds the config from flags (`--name value`, `--name=value`, bare `--flag` for booleans) over
 * env over defaults. Unknown flags are errors, not ignored: a typo must not silently run defaults.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServiceConfig {
  const flagValues = parseFlags(argv);
  const config: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const fromFlag = flagValues.get(setting.flag);
    const fromEnv = env[setting.env];
    if (fromFlag !== undefined) config[setting.key] = parseValue(setting, fromFlag, `--${setting.flag}`);
    else if (fromEnv !== undefined && fromEnv !== '') config[setting.key] = parseValue(setting, fromEnv, setting.env);
    else config[setting.key] = setting.default === undefined ? undefined : parseValue(setting, setting.default, `default of --${setting.flag}`);
  }
  config.policyFileExplicit = flagValues.has('config') || Boolean(env.BREAKWATER_CONFIG);
  const result = config as unknown as ServiceConfig;
  if (result.clickhouseUrl !== undefined) {
    try {
      const url = new URL(result.clickhouseUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    } catch {
      throw new ConfigError(`CLICKHOUSE_URL / --clickhouse-url: expected an http(s) URL, got ${JSON.stringify(withoutCredentials(result.clickhouseUrl))}`);
    }
  }
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(result.clickhouseDatabase)) {
    throw new ConfigError(`CLICKHOUSE_DATABASE / --clickhouse-database: expected an identifier, got ${JSON.stringify(result.clickhouseDatabase)}`);
  }
  if (result.headersTimeoutMs > result.requestTimeoutMs) {
    throw new ConfigError(`--headers-timeout-ms (${result.headersTimeoutMs}) must not exceed --request-timeout-ms (${result.requestTimeoutMs})`);
  }
  return result;
}

function parseFlags(argv: readonly string[]): Map<string, string> {
  const known = new Map(SETTINGS.map((s) => [s.flag, s]));
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (flags look like --name value)`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const setting = known.get(name);
    if (!setting) {
      const closest = closestName(name, known.keys());
      throw new ConfigError(`unknown flag --${name}${closest === undefined ? '' : ` (did you mean --${closest}?)`}; see --help`);
    }
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (setting.kind === 'bool' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) value = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`flag --${name} needs a value`);
      value = next;
      i++;
    }
    values.set(name, value);
  }
  return values;
}

export function configHelp(): string {
  const rows = SETTINGS.map((s) => {
    const def = s.default === undefined ? '' : ` (default ${s.default === '' ? '""' : s.default})`;
    return `  --${s.flag.padEnd(22)} ${s.env.padEnd(28)} ${s.help}${def}`;
  });
  return ['Flags (each also read from the environment variable beside it):', ...rows].join('\n');
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}

/** A URL as it may be shown in an error: whatever stands before an `@` in its authority is a credential. */
function withoutCredentials(text: string): string {
  return text.replace(/^([^:/?#]*:\/\/)?[^/?#@]*@/, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
}
