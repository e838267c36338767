// The console's shell: the token bar and a hash router over the fleet, tenant and run pages.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { getToken, setToken } from './api.js';
import { Fleet } from './fleet.js';
import { TenantPage } from './tenant.js';
import { RunPage } from './run.js';

function route(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'tenant' && parts[1]) return { page: 'tenant', id: parts[1] };
  if (parts[0] === 'run' && parts[1] && parts[2]) return { page: 'run', tenantId: parts[1], runId: parts[2] };
  return { page: 'fleet' };
}

function TokenBar({ onChange }) {
  const [value, setValue] = useState(getToken());
  const save = (event) => {
    event.preventDefault();
    setToken(value.trim());
    onChange();
  };
  return html`<form class="token" onSubmit=${save}>
    <label>API token <input type="password" name="token" autocomplete="off" placeholder="none on a loopback Breakwater without tokens" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} /></label>
    <button type="submit">Use</button>
    <span class="muted">${getToken() ? 'kept for this tab only' : 'anonymous'}</span>
  </form>`;
}

function App() {
  const [where, setWhere] = useState(route(location.hash));
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const onHash = () => setWhere(route(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const key = `${generation}:${location.hash}`;
  let page;
  if (where.page === 'tenant') page = html`<${TenantPage} key=${key} id=${where.id} />`;
  else if (where.page === 'run') page = html`<${RunPage} key=${key} tenantId=${where.tenantId} runId=${where.runId} />`;
  else page = html`<${Fleet} key=${key} />`;
  return html`<header><a class="brand" href="#/">Breakwater</a> <a href="/graphql">GraphiQL</a> <${TokenBar} onChange=${() => setGeneration((g) => g + 1)} /></header>
    <main>${page}</main>`;
}

render(html`<${App} />`, document.getElementById('app'));
