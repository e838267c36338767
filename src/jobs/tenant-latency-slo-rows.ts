import { tenantDegradationPolicy, type DegradationSection } from '../degradation/degradation-schema.js';
import type { SelfMetricRow } from './self-metrics-snapshot.js';

// Each active tenant's latency SLO (the policy's degradation.triggers.latencyP95Ms, defaults with the
// tenant's entry laid over), copied into self_metrics so the latency alert can compare the tenant's
// stored p95 with its own SLO instead of one number for every tenant.

/** Name of the per-tenant rows: Value = the tenant's latency SLO in ms. */
export const TENANT_LATENCY_SLO = 'breakwater_tenant_latency_slo_ms';

export interface TenantLatencySloSources {
  windows: { tenants(): Iterable<string> };
  degradation: () => DegradationSection;
  /** at most this many rows per snapshot */
  maxRows: number;
}

export function tenantLatencySloRows(sources: TenantLatencySloSources, time: string, instance: string): SelfMetricRow[] {
  const section = sources.degradation();
  const rows: SelfMetricRow[] = [];
  for (const tenantId of sources.windows.tenants()) {
    if (rows.length >= sources.maxRows) break;
    const slo = tenantDegradationPolicy(section, tenantId).triggers.latencyP95Ms;
    if (slo === undefined) continue; // no SLA: the alert has nothing to compare with
    rows.push({ Time: time, Instance: instance, Name: TENANT_LATENCY_SLO, Kind: 'gauge', Labels: { tenant: tenantId }, Value: slo, Delta: 0 });
  }
  return rows;
}
