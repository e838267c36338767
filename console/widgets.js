// Small pieces the pages share: the API's errors, decision badges, times.
import { html } from './html.js';

const WHAT_TO_DO = {
  UNAUTHENTICATED: 'Paste an API token above (an admin token, or the tenant\'s own).',
  FORBIDDEN: 'This token may not see this. A tenant token sees its own tenant only.',
  TOO_MANY_FAILED_AUTH: 'Too many wrong tokens from this address: wait a minute.',
};

export function ErrorBox({ error }) {
  const code = error.code ?? 'ERROR';
  const refused = code === 'UNAUTHENTICATED' || code === 'FORBIDDEN';
  return html`<div class="error" role="alert" data-code=${code}>
    <strong>${refused ? 'Access refused' : 'Breakwater answered with an error'}</strong> (${code}): ${error.message}
    ${WHAT_TO_DO[code] ? html`<div>${WHAT_TO_DO[code]}</div>` : null}
  </div>`;
}

export function Loading() {
  return html`<p class="muted">Loading…</p>`;
}

export function Badge({ action, state }) {
  return html`<span class=${`badge badge-${(action ?? state ?? '').toLowerCase()}`}>${action ?? state}</span>`;
}

export function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString('en-GB') : '–';
}

export function LiveDot({ events }) {
  return html`<span class="live" title="updates arrive over the decisions and breakerEvents subscriptions">● live${events ? ` (${events} updates)` : ''}</span>`;
}
