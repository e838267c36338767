// The fleet: every tenant by token velocity, with trips, cost and live breaker state.
import { html } from './html.js';
import { useLive, useQuery } from './hooks.js';
import { Badge, ErrorBox, LiveDot, Loading } from './widgets.js';
import { formatNumber } from './chart.js';

const FLEET = `query Fleet {
  tenants(sort: TOKEN_VELOCITY, first: 50) {
    totalCount
    edges { node {
      id
      decision { action state reason }
      metrics { tokenVelocity60s toolCallsPerMinute costPerMinuteUsd costUsd }
      trips(minutes: 60)
      breakers { scope runId state }
    } }
  }
}`;

const EVENTS = 'subscription Decisions($t: String!) { decisions(tenantId: $t) { action state sequence } }';

export function Fleet() {
  const { data, error, loading, reload } = useQuery(FLEET, {}, { pollMs: 5000 });
  const tenants = data?.tenants.edges.map((e) => e.node) ?? [];
  // one decisions subscription (all its runs) per listed tenant, on the page's single stream
  const events = useLive(tenants.slice(0, 20).map((t) => [EVENTS, { t: t.id }]), reload);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading) return html`<${Loading} />`;
  return html`<section>
    <h1>Fleet <span class="muted">${data.tenants.totalCount} tenants, by token velocity</span> <${LiveDot} events=${events} /></h1>
    <table class="fleet">
      <thead><tr><th>tenant</th><th>decision</th><th>open breakers</th><th>tokens/s (60 s)</th><th>tool calls/min</th><th>trips (1 h)</th><th>cost/min</th><th>cost (window)</th></tr></thead>
      <tbody>
        ${tenants.map((t) => {
          const open = t.breakers.filter((b) => b.state !== 'CLOSED' && b.state !== 'DISABLED');
          return html`<tr data-tenant=${t.id} class=${t.decision.action === 'ALLOW' ? '' : 'tripping'}>
            <td><a href=${`#/tenant/${encodeURIComponent(t.id)}`}>${t.id}</a></td>
            <td><${Badge} action=${t.decision.action} /> <span class="muted">${t.decision.action === 'ALLOW' ? '' : t.decision.reason}</span></td>
            <td class="breakers">${open.length === 0 ? html`<span class="muted">none</span>` : open.map((b) => html`<${Badge} state=${b.state} /> <span class="muted">${b.scope === 'RUN' ? b.runId : 'tenant'}</span> `)}</td>
            <td class="num">${formatNumber(t.metrics.tokenVelocity60s)}</td>
            <td class="num">${formatNumber(t.metrics.toolCallsPerMinute)}</td>
            <td class="num trips">${t.trips}</td>
            <td class="num">$${formatNumber(t.metrics.costPerMinuteUsd)}</td>
            <td class="num">$${formatNumber(t.metrics.costUsd)}</td>
          </tr>`;
        })}
      </tbody>
    </table>
  </section>`;
}
