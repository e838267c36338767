// The provider APIs the gateway speaks: which paths go to which upstream, how a client presents
// its key, and each provider's own error shape, so a refusal reads like one from the provider.

export type ProviderApi = 'openai' | 'anthropic';

export interface Route {
  api: ProviderApi;
  /** the GenAI semantic-convention operation of the call */
  operation: 'chat' | 'embeddings' | 'list_models';
  /** whether the body must name a model */
  needsModel: boolean;
}

const ROUTES: Readonly<Record<string, Route>> = {
  'POST /v1/chat/completions': { api: 'openai', operation: 'chat', needsModel: true },
  'POST /v1/responses': { api: 'openai', operation: 'chat', needsModel: true },
  'POST /v1/embeddings': { api: 'openai', operation: 'embeddings', needsModel: true },
  'GET /v1/models': { api: 'openai', operation: 'list_models', needsModel: false },
  'POST /v1/messages': { api: 'anthropic', operation: 'chat', needsModel: true },
};

export function routeOf(method: string | undefined, path: string): Route | undefined {
  return ROUTES[`${method ?? 'GET'} ${path}`];
}

/** The gateway key a client sent: OpenAI clients send a bearer token, Anthropic ones `x-api-key`. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(typeof headers.authorization === 'string' ? headers.authorization : '');
  return match?.[1];
}

/** What a refusal says, beyond its message: Breakwater's decision fields, when a decision refused it. */
export interface RefusalDetail {
  reason?: string;
  metric?: string;
  threshold?: number;
  observed?: number;
  retryAfterMs?: number;
  scope?: string;
}

export type RefusalKind = 'invalid_request' | 'authentication' | 'permission' | 'rate_limit' | 'not_found' | 'too_large' | 'upstream';

const OPENAI_TYPES: Record<RefusalKind, { type: string; code: string | null }> = {
  invalid_request: { type: 'invalid_request_error', code: null },
  authentication: { type: 'invalid_request_error', code: 'invalid_api_key' },
  permission: { type: 'breakwater_halt', code: 'breakwater_halt' },
  rate_limit: { type: 'requests', code: 'rate_limit_exceeded' },
  not_found: { type: 'invalid_request_error', code: 'unknown_url' },
  too_large: { type: 'invalid_request_error', code: 'request_too_large' },
  upstream: { type: 'server_error', code: 'upstream_unreachable' },
};

const ANTHROPIC_TYPES: Record<RefusalKind, string> = {
  invalid_request: 'invalid_request_error',
  authentication: 'authentication_error',
  permission: 'permission_error',
  rate_limit: 'rate_limit_error',
  not_found: 'not_found_error',
  too_large: 'request_too_large',
  upstream: 'api_error',
};

/** A refusal's body in the provider's error format, with Breakwater's decision fields beside it. */
export function errorBody(api: ProviderApi, kind: RefusalKind, message: string, detail?: RefusalDetail): string {
  const breakwater = detail === undefined ? {} : { breakwater: detail };
  if (api === 'anthropic') return JSON.stringify({ type: 'error', error: { type: ANTHROPIC_TYPES[kind], message, ...breakwater } });
  const { type, code } = OPENAI_TYPES[kind];
  return JSON.stringify({ error: { message, type, param: null, code, ...breakwater } });
}
