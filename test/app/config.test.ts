import { describe, expect, it } from 'vitest';
import { ConfigError, configHelp, loadConfig, SETTINGS } from '../../src/app/config.js';

describe('loadConfig', () => {
  it('uses loopback defaults and embedded storage', () => {
    const config = loadConfig([], {});
    expect(config).toMatchObject({ host: '127.0.0.1', otlpPort: 4318, graphqlPort: 4000, dataDir: './data', clickhouseUrl: undefined, requireTenant: true });
  });

  it('takes bodies up to the OpenTelemetry Collector OTLP/HTTP default, 20 MiB', () => {
    expect(loadConfig([], {}).maxBodyBytes).toBe(20 * 1024 * 1024);
  });

  it('reads env vars and lets flags override them', () => {
    const env = { BREAKWATER_OTLP_PORT: '5318', BREAKWATER_DATA_DIR: '/tmp/x', CLICKHOUSE_URL: 'http://ch:8123', BREAKWATER_REQUIRE_TENANT: 'false' };
    const config = loadConfig(['--otlp-port', '6318', '--log-level=warn'], env);
    expect(config).toMatchObject({ otlpPort: 6318, dataDir: '/tmp/x', clickhouseUrl: 'http://ch:8123', requireTenant: false, logLevel: 'warn' });
  });

  it('treats a bare boolean flag as true', () => {
    expect(loadConfig(['--insecure'], {}).insecure).toBe(true);
    expect(loadConfig(['--insecure', '--host', '0.0.0.0'], {}).host).toBe('0.0.0.0');
  });

  it.each([
    [['--otlp-port', '70000'], /--otlp-port: port must be 0-65535/],
    [['--otlp-port', '12ab'], /--otlp-port: expected a non-negative integer/],
    [['--otlp-port', '-1'], /expected a non-negative integer/],
    [['--retention-days', '0'], /--retention-days: must be at least 1/],
    [['--log-level', 'loud'], /--log-level: expected one of/],
    [['--require-tenant', 'maybe'], /--require-tenant: expected true or false/],
    [['--no-such-flag', '1'], /unknown flag --no-such-flag/],
    [['serve'], /unexpected argument "serve"/],
    [['--data-dir'], /flag --data-dir needs a value/],
    [['--clickhouse-url', 'ftp://x'], /expected an http\(s\) URL/],
    [['--clickhouse-database', 'x; DROP TABLE spans'], /expected an identifier/],
    [['--data-dir', 'x'.repeat(5000)], /longer than 4096/],
    [['--headers-timeout-ms', '10'], /--headers-timeout-ms: must be at least 100/],
    [['--storage-nice', '20'], /--storage-nice: must be at most 19/],
    [['--headers-timeout-ms', '5000', '--request-timeout-ms', '1000'], /--headers-timeout-ms \(5000\) must not exceed --request-timeout-ms \(1000\)/],
  ])('rejects %j with a message naming the flag', (argv, message) => {
    expect(() => loadConfig(argv, {})).toThrow(ConfigError);
    expect(() => loadConfig(argv, {})).toThrow(message);
  });

  it.each(['ftp://user:s3cret-pass@host:9000', 'user:s3cret-pass@host:8123', 'ftp://s3cret-pass@host'])(
    'does not echo the credentials of a rejected ClickHouse URL (%s)',
    (url) => {
      expect(() => loadConfig(['--clickhouse-url', url], {})).toThrow(/expected an http\(s\) URL, got ".*\*\*\*@host/);
      expect(() => loadConfig([], { CLICKHOUSE_URL: url })).not.toThrow(/s3cret/);
    },
  );

  it('names the env var when the bad value came from the environment', () => {
    expect(() => loadConfig([], { BREAKWATER_GRAPHQL_PORT: 'abc' })).toThrow(/BREAKWATER_GRAPHQL_PORT/);
  });

  it('documents every setting in --help', () => {
    const help = configHelp();
    for (const s of SETTINGS) {
      expect(help).toContain(`--${s.flag}`);
      expect(help).toContain(s.env);
    }
  });
});
