// The demo's live view, read through Breakwater's own GraphQL API: per tenant token velocity,
// tool-call rate and the worst breaker decision in force.

import type { TenantStats } from './agents.js';

export interface BreakerRow {
  scope: string;
  runId: string | null;
  state: string;
  decision: { action: string; metric: string; observed: number; threshold: number; reason: string };
}

export interface TenantRow {
  id: string;
  policy: { tier: string };
  metrics: { tokenVelocity60s: number; toolCallsPerMinute: number; costUsd: number };
  decision: { action: string; state: string };
  breakers: BreakerRow[];
}

export const LIVE_QUERY = `{ tenants(sort: ID, first: 20) { edges { node {
  id policy { tier } metrics { tokenVelocity60s toolCallsPerMinute costUsd } decision { action state }
  breakers { scope runId state decision { action metric observed threshold reason } } } } } }`;

export async function graphql<T>(graphqlUrl: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`${graphqlUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length || body.data === undefined) throw new Error(`GraphQL: ${body.errors?.map((e) => e.message).join('; ') ?? res.status}`);
  return body.data;
}

export async function fetchTenants(graphqlUrl: string): Promise<TenantRow[]> {
  const data = await graphql<{ tenants: { edges: { node: TenantRow }[] } }>(graphqlUrl, LIVE_QUERY);
  return data.tenants.edges.map((e) => e.node);
}

const SEVERITY = ['ALLOW', 'WARN', 'THROTTLE', 'DEGRADE', 'HALT'];

/** The most severe breaker decision of a tenant (tenant-wide or any run), for its row. */
export function worstBreaker(row: TenantRow): BreakerRow | undefined {
  let worst: BreakerRow | undefined;
  for (const b of row.breakers) {
    if (worst === undefined || SEVERITY.indexOf(b.decision.action) > SEVERITY.indexOf(worst.decision.action)) worst = b;
  }
  return worst;
}

export function describeBreaker(row: TenantRow): string {
  const worst = worstBreaker(row);
  if (worst === undefined || worst.decision.action === 'ALLOW') return `${row.decision.state.padEnd(9)} ${row.decision.action}`;
  const where = worst.scope === 'RUN' ? `run ${worst.runId}` : worst.scope.toLowerCase();
  const d = worst.decision;
  return `${worst.state.padEnd(9)} ${d.action} ${where}: ${d.metric} ${round(d.observed)} / ${round(d.threshold)}`;
}

export function renderTable(rows: readonly TenantRow[], stats: ReadonlyMap<string, TenantStats>, color: boolean): string[] {
  const paint = (text: string, action: string) => {
    if (!color) return text;
    const code = action === 'HALT' ? '31;1' : action === 'WARN' || action === 'THROTTLE' || action === 'DEGRADE' ? '33' : '32';
    return `\x1b[${code}m${text}\x1b[0m`;
  };
  const header = ` ${'TENANT'.padEnd(10)} ${'TIER'.padEnd(11)} ${'TOKENS/S 60s'.padStart(12)} ${'TOOLS/MIN'.padStart(9)} ${'COST $'.padStart(8)} ${'RUNS'.padStart(5)}  BREAKER`;
  const lines = [header];
  for (const row of rows) {
    const s = stats.get(row.id);
    const action = worstBreaker(row)?.decision.action ?? row.decision.action;
    lines.push(
      ` ${row.id.padEnd(10)} ${row.policy.tier.padEnd(11)} ${row.metrics.tokenVelocity60s.toFixed(1).padStart(12)} ${String(Math.round(row.metrics.toolCallsPerMinute)).padStart(9)} ${row.metrics.costUsd.toFixed(4).padStart(8)} ${String(s?.runs ?? 0).padStart(5)}  ${paint(describeBreaker(row), action)}`,
    );
  }
  return lines;
}

function round(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}
