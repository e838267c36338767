// The SDK finds Breakwater from the environment when the options do not say: the OpenTelemetry
// variables for spans, BREAKWATER_GRAPHQL_URL (a comma-separated failover list) and
// BREAKWATER_API_TOKEN for decisions; explicit options win.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/app/service.js';
import { apiToken, graphqlBases, otlpTracesUrl } from '../../src/sdk/endpoints.js';
import { Breakwater } from '../../src/sdk/index.js';
import { silentLogger } from '../../src/sdk/logger.js';
import { startWithPolicy } from '../helpers/service.js';

const TOKEN = 'env-a-api-token-0123456789';
const INGEST = 'env-a-ingest-key-0123456789';
const DEAD = 'http://127.0.0.1:9';

describe('reading the environment', () => {
  it('takes the options first, then the variables', () => {
    const env = { BREAKWATER_GRAPHQL_URL: 'http://a:4000/graphql, http://b:4000/', BREAKWATER_API_TOKEN: 'from-env', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' };
    expect(graphqlBases(undefined, env)).toEqual(['http://a:4000', 'http://b:4000']);
    expect(graphqlBases('http://x:1/graphql/stream', env)).toEqual(['http://x:1']);
    expect(graphqlBases(['http://x:1', 'http://y:2,http://z:3'], env)).toEqual(['http://x:1', 'http://y:2', 'http://z:3']);
    expect(() => graphqlBases(undefined, {})).toThrow(/BREAKWATER_GRAPHQL_URL/);
    expect(otlpTracesUrl(undefined, env)).toBe('http://c:4318/v1/traces');
    expect(otlpTracesUrl('http://o:4318/v1/traces', env)).toBe('http://o:4318/v1/traces');
    // The signal-specific variable is used as is, as the OpenTelemetry specification says.
    expect(otlpTracesUrl(undefined, { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4318/custom' })).toBe('http://t:4318/custom');
    expect(otlpTracesUrl(undefined, {})).toBeUndefined();
    expect(apiToken(undefined, env)).toBe('from-env');
    expect(apiToken('explicit', env)).toBe('explicit');
    expect(apiToken('', env)).toBeUndefined();
  });
});

describe('against a real Breakwater that requires tokens', () => {
  let service: Service;
  const saved = { ...process.env };
  const instances: Breakwater[] = [];

  beforeAll(async () => {
    service = await startWithPolicy(`
tiers: { free: { run: { toolCallsPerMinute: 1000 } } }
tenants: { env-a: { tier: free } }
auth:
  adminTokens: ['env-admin-token-0123456789']
  tenants:
    env-a: { apiTokens: ['${TOKEN}'], ingestKeys: ['${INGEST}'] }
`);
  });

  afterEach(() => {
    process.env = { ...saved };
  });

  afterAll(async () => {
    await Promise.all(instances.map((bw) => bw.shutdown()));
    await service?.stop();
  });

  it('connects and exports with nothing but the environment', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = service.otlpUrl;
    process.env.BREAKWATER_GRAPHQL_URL = `${DEAD},${service.graphqlUrl}`;
    process.env.BREAKWATER_API_TOKEN = TOKEN;
    process.env.BREAKWATER_INGEST_KEY = INGEST;
    const bw = await Breakwater.start({ tenantId: 'env-a', global: false, logger: silentLogger, backoff: { initialMs: 20, maxMs: 100 } });
    instances.push(bw);
    // Connected means the subscription was accepted, which needs the token (else 401).
    expect(bw.status().connected).toBe(true);
    await bw.run('env-run', () => bw.toolCall('ping', async () => 1));
    await bw.flush();
    expect(bw.status().exports).toMatchObject({ exported: 2, failed: 0 });
  });

  it('prefers explicit options to the environment', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = DEAD;
    process.env.BREAKWATER_GRAPHQL_URL = DEAD;
    process.env.BREAKWATER_API_TOKEN = 'not-a-token-of-anyone-0123456789';
    const bw = await Breakwater.start({
      tenantId: 'env-a',
      otlpUrl: service.otlpUrl,
      graphqlUrl: service.graphqlUrl,
      apiToken: TOKEN,
      ingestKey: INGEST,
      global: false,
      logger: silentLogger,
    });
    instances.push(bw);
    expect(bw.status().connected).toBe(true);
    await bw.run('explicit-run', () => bw.toolCall('ping', async () => 1));
    await bw.flush();
    expect(bw.status().exports).toMatchObject({ exported: 2, failed: 0 });
  });

  it('says which option is missing when neither option nor variable is set', async () => {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    delete process.env.BREAKWATER_GRAPHQL_URL;
    await expect(Breakwater.start({ tenantId: 'env-a', global: false, otlpUrl: service.otlpUrl })).rejects.toThrow(/BREAKWATER_GRAPHQL_URL/);
    await expect(Breakwater.start({ tenantId: 'env-a', global: false, graphqlUrl: service.graphqlUrl })).rejects.toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
});
