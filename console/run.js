// One run: its steps and sub-agents, its decisions, and the halt with its reason.
import { html } from './html.js';
import { useLive, useQuery } from './hooks.js';
import { formatNumber } from './chart.js';
import { AuditTable } from './tenant.js';
import { Badge, ErrorBox, LiveDot, Loading, time } from './widgets.js';

const RUN = `query Run($t: String!, $r: String!) {
  run(tenantId: $t, runId: $r) {
    tenantId runId
    metrics { stepCount toolCallsPerMinute tokenVelocity60s costUsd subAgentDepth }
    decision { action state reason metric threshold observed issuedAt }
    steps(first: 100) { name toolName model inputTokens outputTokens isError depth startTime durationMs }
    subAgents { spanId parentSpanId depth }
    decisions(first: 100) { seq time kind metric threshold observed oldState newState actor reason }
  }
}`;

const LIVE = 'subscription D($t: String!, $r: String) { decisions(tenantId: $t, runId: $r) { action sequence } }';

export function RunPage({ tenantId, runId }) {
  const { data, error, loading, reload } = useQuery(RUN, { t: tenantId, r: runId });
  const events = useLive(error ? [] : [[LIVE, { t: tenantId, r: runId }]], reload);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading) return html`<${Loading} />`;
  const run = data.run;
  if (run === null) return html`<div class="error" role="alert">No run <code>${runId}</code> for tenant <code>${tenantId}</code>.</div>`;
  const d = run.decision;
  const halted = d.action === 'HALT';
  return html`<section class="run" data-run=${run.runId}>
    <h1><a href="#/">Fleet</a> / <a href=${`#/tenant/${encodeURIComponent(tenantId)}`}>${tenantId}</a> / ${run.runId} <${Badge} action=${d.action} /> <${LiveDot} events=${events} /></h1>
    ${d.action === 'ALLOW'
      ? null
      : html`<div class=${halted ? 'halt' : 'warn'} role="status">
          <b>${halted ? 'Halted' : d.action}</b> at ${time(d.issuedAt)}: <span class="halt-reason">${d.reason}</span>
          <div class="muted">${d.metric} observed ${formatNumber(d.observed)} against ${formatNumber(d.threshold)}; breaker ${d.state}</div>
        </div>`}
    ${run.metrics ? html`<div class="tiles">
      <div><b>${run.metrics.stepCount}</b> steps</div>
      <div><b>${formatNumber(run.metrics.toolCallsPerMinute)}</b> tool calls/min</div>
      <div><b>${formatNumber(run.metrics.tokenVelocity60s)}</b> tokens/s</div>
      <div><b>$${formatNumber(run.metrics.costUsd)}</b> cost</div>
      <div><b>${run.metrics.subAgentDepth}</b> sub-agent depth</div>
    </div>` : null}
    <h2>Steps <span class="muted">(${run.steps.length})</span></h2>
    <table class="steps">
      <thead><tr><th>time</th><th>depth</th><th>step</th><th>model / tool</th><th>tokens in/out</th><th>ms</th></tr></thead>
      <tbody>${run.steps.map((s) => html`<tr class=${s.isError ? 'is-error' : ''}><td>${time(s.startTime)}</td><td>${s.depth < 0 ? '–' : s.depth}</td><td>${'· '.repeat(Math.max(0, s.depth))}${s.name}</td><td>${s.toolName || s.model}</td><td class="num">${s.inputTokens}/${s.outputTokens}</td><td class="num">${formatNumber(s.durationMs)}</td></tr>`)}</tbody>
    </table>
    <h2>Sub-agents</h2>
    ${run.subAgents.length === 0 ? html`<p class="muted">none</p>` : html`<ul>${run.subAgents.map((a) => html`<li>depth ${a.depth}: span <code>${a.spanId}</code> under <code>${a.parentSpanId}</code></li>`)}</ul>`}
    <h2>Decisions</h2>
    <${AuditTable} events=${run.decisions} />
  </section>`;
}
