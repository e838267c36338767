// One tenant: its rates as charts, its breakers and runs, its degradation ladder, consents and audit log.
import { html } from './html.js';
import { useLive, useQuery } from './hooks.js';
import { Chart, formatNumber } from './chart.js';
import { Badge, ErrorBox, LiveDot, Loading, time } from './widgets.js';

const TENANT = `query Tenant($id: String!) {
  tenant(id: $id) {
    id
    policy { tier }
    decision { action state reason metric threshold observed }
    metrics { tokenVelocity60s toolCallsPerMinute costPerMinuteUsd costUsd errorRatio }
    trips(minutes: 60)
    tokens: timeseries(metric: TOKENS, last: "1h") { time value }
    tools: timeseries(metric: TOOL_CALLS, last: "1h") { time value }
    cost: timeseries(metric: COST_USD, last: "1h") { time value }
    breakers { scope runId state decision { action reason } }
    activeRuns(first: 50) { runId lastSeen metrics { stepCount tokenVelocity60s costUsd } decision { action reason } }
    degradation { pendingConsents { id task from { tier provider model } to { tier provider model } requestedAt expiresAt } status }
    auditEvents(last: "1h", first: 50) { seq time kind runId scope metric threshold observed oldState newState actor reason }
  }
  effectivePolicy(tenantId: $id) { degradation }
}`;

const LIVE = [
  'subscription D($t: String!) { decisions(tenantId: $t) { action sequence } }',
  'subscription E($t: String!) { breakerEvents(tenantId: $t) { kind newState } }',
];

export function TenantPage({ id }) {
  const { data, error, loading, reload } = useQuery(TENANT, { id });
  const events = useLive(error ? [] : LIVE.map((q) => [q, { t: id }]), reload);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading) return html`<${Loading} />`;
  const t = data.tenant;
  if (t === null) return html`<div class="error" role="alert">Breakwater knows no tenant <code>${id}</code>: no policy entry, no live windows, no stored spans.</div>`;
  return html`<section class="tenant" data-tenant=${t.id}>
    <h1><a href="#/">Fleet</a> / ${t.id} <span class="muted">tier ${t.policy.tier}</span> <${Badge} action=${t.decision.action} /> <${LiveDot} events=${events} /></h1>
    ${t.decision.action === 'ALLOW' ? null : html`<p class="reason">${t.decision.reason}</p>`}
    <div class="tiles">
      <div><b>${formatNumber(t.metrics.tokenVelocity60s)}</b> tokens/s</div>
      <div><b>${formatNumber(t.metrics.toolCallsPerMinute)}</b> tool calls/min</div>
      <div><b>$${formatNumber(t.metrics.costPerMinuteUsd)}</b> per min</div>
      <div><b>${t.trips}</b> trips (1 h)</div>
      <div><b>${formatNumber(t.metrics.errorRatio * 100)}%</b> errors</div>
    </div>
    <div class="charts">
      <${Chart} title="Tokens" points=${t.tokens} />
      <${Chart} title="Tool calls" points=${t.tools} />
      <${Chart} title="Cost" points=${t.cost} unit=" USD" />
    </div>
    <h2>Breakers</h2>
    <table class="breakers">
      <thead><tr><th>scope</th><th>run</th><th>state</th><th>decision</th></tr></thead>
      <tbody>${t.breakers.map((b) => html`<tr><td>${b.scope}</td><td>${b.runId ? html`<a href=${runHref(t.id, b.runId)}>${b.runId}</a>` : '–'}</td><td><${Badge} state=${b.state} /></td><td><${Badge} action=${b.decision.action} /> <span class="muted">${b.decision.reason}</span></td></tr>`)}</tbody>
    </table>
    <h2>Runs</h2>
    <table class="runs">
      <thead><tr><th>run</th><th>decision</th><th>steps</th><th>tokens/s</th><th>cost</th><th>last seen</th></tr></thead>
      <tbody>${t.activeRuns.map((r) => html`<tr data-run=${r.runId}><td><a href=${runHref(t.id, r.runId)}>${r.runId}</a></td><td><${Badge} action=${r.decision.action} /> <span class="muted">${r.decision.action === 'ALLOW' ? '' : r.decision.reason}</span></td><td class="num">${r.metrics.stepCount}</td><td class="num">${formatNumber(r.metrics.tokenVelocity60s)}</td><td class="num">$${formatNumber(r.metrics.costUsd)}</td><td>${time(r.lastSeen)}</td></tr>`)}</tbody>
    </table>
    <${Ladder} policy=${data.effectivePolicy?.degradation} status=${t.degradation.status} />
    <h2>Pending consents</h2>
    ${t.degradation.pendingConsents.length === 0
      ? html`<p class="muted">none</p>`
      : html`<ul class="consents">${t.degradation.pendingConsents.map((c) => html`<li><b>${c.task}</b>: tier ${c.from.tier} ${c.from.model} → tier ${c.to.tier} ${c.to.model}, until ${time(c.expiresAt)} <code>${c.id}</code></li>`)}</ul>`}
    <h2>Audit log <span class="muted">(last hour)</span></h2>
    <${AuditTable} events=${t.auditEvents} />
  </section>`;
}

function runHref(tenantId, runId) {
  return `#/run/${encodeURIComponent(tenantId)}/${encodeURIComponent(runId)}`;
}

function Ladder({ policy, status }) {
  const tiers = policy?.tiers ?? [];
  const current = new Map((status?.tracks ?? []).map((track) => [track.task, track.tier]));
  return html`<h2>Degradation ladder</h2>
    ${tiers.length === 0
      ? html`<p class="muted">no tiers configured</p>`
      : html`<ol class="ladder">${tiers.map((tier) => {
          const here = [...current].filter(([, at]) => at === tier.tier).map(([task]) => task);
          return html`<li class=${here.length ? 'current' : ''}>tier ${tier.tier}: ${tier.provider} ${tier.model}${here.length ? html` <span class="muted">← ${here.join(', ')}</span>` : null}</li>`;
        })}</ol>`}`;
}

export function AuditTable({ events }) {
  if (events.length === 0) return html`<p class="muted">no events</p>`;
  return html`<table class="audit">
    <thead><tr><th>#</th><th>time</th><th>kind</th><th>run</th><th>change</th><th>metric</th><th>actor</th><th>reason</th></tr></thead>
    <tbody>${events.map((e) => html`<tr><td>${e.seq}</td><td>${time(e.time)}</td><td>${e.kind}</td><td>${e.runId || '–'}</td><td>${e.oldState} → ${e.newState}</td><td>${e.metric ? `${e.metric} ${formatNumber(e.observed)} / ${formatNumber(e.threshold)}` : ''}</td><td>${e.actor}</td><td>${e.reason}</td></tr>`)}</tbody>
  </table>`;
}
