// Where the SDK sends spans and reads decisions: the options when given, else the environment
// (OTEL_EXPORTER_OTLP_*, BREAKWATER_GRAPHQL_URL, BREAKWATER_API_TOKEN), so a deployment can point
// an unchanged agent at another Breakwater.

export type Env = Readonly<Record<string, string | undefined>>;

/** The URL without a known trailing path and slashes. */
export function baseUrl(url: string, suffix: RegExp): string {
  return url.trim().replace(/\/+$/, '').replace(suffix, '');
}

/** Breakwater's GraphQL base URLs (no /graphql), in failover order; throws when none is given. */
export function graphqlBases(option: string | readonly string[] | undefined, env: Env): string[] {
  const given = option === undefined ? splitList(env.BREAKWATER_GRAPHQL_URL) : typeof option === 'string' ? splitList(option) : option.flatMap(splitList);
  if (given.length === 0) {
    throw new TypeError('Breakwater: graphqlUrl is required (the option, or BREAKWATER_GRAPHQL_URL, comma-separated for failover)');
  }
  return given.map((url) => baseUrl(url, /\/graphql(\/stream)?$/));
}

/**
 * The OTLP/HTTP traces URL: the otlpUrl option (a base; /v1/traces is added), else
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT used as is, else OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/traces,
 * as the OpenTelemetry specification says for the two variables.
 */
export function otlpTracesUrl(option: string | undefined, env: Env): string | undefined {
  if (option !== undefined && option.trim() !== '') return `${baseUrl(option, /\/v1\/traces$/)}/v1/traces`;
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (base) return `${base.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

/** The API token: the option when given (even empty, to send none), else BREAKWATER_API_TOKEN. */
export function apiToken(option: string | undefined, env: Env): string | undefined {
  const token = option ?? env.BREAKWATER_API_TOKEN;
  return token === undefined || token === '' ? undefined : token;
}

function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
