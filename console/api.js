// The console's only way to Breakwater: its GraphQL API, with the token the user gave.
import { createClient } from 'graphql-sse';

const TOKEN_KEY = 'breakwater.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  resetStream();
}

function authHeaders() {
  const token = getToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** An error as the API gave it: its message and code (UNAUTHENTICATED, FORBIDDEN, ...). */
export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

export async function query(text, variables = {}) {
  const res = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...authHeaders() },
    body: JSON.stringify({ query: text, variables }),
  });
  let body;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`Breakwater answered HTTP ${res.status}`, `HTTP_${res.status}`);
  }
  if (body.errors?.length) {
    const first = body.errors[0];
    throw new ApiError(first.message, first.extensions?.code ?? 'ERROR');
  }
  return body.data;
}

let stream;

function resetStream() {
  stream?.dispose();
  stream = undefined;
}

/** One graphql-sse stream for every subscription of the page (browsers allow few connections per host). */
function client() {
  stream ??= createClient({ url: '/graphql/stream', singleConnection: true, headers: authHeaders, retryAttempts: 1000, retry: () => new Promise((r) => setTimeout(r, 2000)) });
  return stream;
}

/** Calls onData with each message of the subscription until the returned function is called. */
export function subscribe(text, variables, onData, onError = () => {}) {
  return client().subscribe({ query: text, variables }, {
    next: (result) => (result.errors ? onError(new ApiError(result.errors[0].message, result.errors[0].extensions?.code)) : onData(result.data)),
    error: onError,
    complete: () => {},
  });
}
