import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Breakwater's own metrics, served as Prometheus text on /metrics. One registry per service
 * instance (not prom-client's global) so tests can run several instances in one process.
 */
export class SelfMetrics {
  readonly registry = new Registry();

  readonly spansReceived = new Counter({
    name: 'breakwater_spans_received_total',
    help: 'Spans decoded from OTLP requests',
    labelNames: ['encoding'] as const,
    registers: [this.registry],
  });
  readonly spansAccepted = new Counter({
    name: 'breakwater_spans_accepted_total',
    help: 'Spans committed to ClickHouse and acknowledged',
    registers: [this.registry],
  });
  readonly spansRejected = new Counter({
    name: 'breakwater_spans_rejected_total',
    help: 'Spans not stored, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly runsRefused = new Counter({
    name: 'breakwater_runs_refused_total',
    help: 'New runs whose spans were refused because their tenant (tenant_runs) or the whole store (runs) held as many runs as it may, none able to give way',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly ingestRequestsRefused = new Counter({
    name: 'breakwater_otlp_requests_refused_total',
    help: 'OTLP requests answered 429 for a per-tenant bound, by reason: the tenant\'s ingest rate (also those refused before their body was decoded), the budget unknown tenants share, or the tenant\'s share of the write queue',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly subscriptionsRefused = new Counter({
    name: 'breakwater_subscriptions_refused_total',
    help: 'Subscriptions refused with TOO_MANY_SUBSCRIPTIONS, by the limit reached: the connection\'s or the token\'s',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly policyChangesRefused = new Counter({
    name: 'breakwater_policy_changes_refused_total',
    help: 'Run-time policy changes refused with RATE_LIMITED: their tenant was over its rate of changes',
    registers: [this.registry],
  });
  readonly runBreakersRefused = new Counter({
    name: 'breakwater_run_breakers_refused_total',
    help: 'Operator actions refused with LIMIT_EXCEEDED: they would create a run breaker past the tenant\'s bound',
    registers: [this.registry],
  });
  readonly attributesDropped = new Counter({
    name: 'breakwater_attributes_dropped_total',
    help: 'Attributes dropped while decoding for the per-span, resource, scope, event and link limit (--max-attributes), counted in their droppedAttributesCount',
    registers: [this.registry],
  });
  readonly senderAttributesDropped = new Counter({
    name: 'breakwater_sender_dropped_attributes_total',
    help: 'Attributes the sender said it dropped (droppedAttributesCount on spans, resources, scopes, events and links as received), for its SDK attribute count limit; Breakwater\'s own drops not included',
    registers: [this.registry],
  });
  readonly requests = new Counter({
    name: 'breakwater_otlp_requests_total',
    help: 'OTLP export requests by HTTP status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'breakwater_write_queue_spans',
    help: 'Spans waiting to be written to ClickHouse',
    registers: [this.registry],
  });
  readonly queueCapacity = new Gauge({
    name: 'breakwater_write_queue_capacity_spans',
    help: 'Spans the write queue holds before ingest answers 503',
    registers: [this.registry],
  });
  readonly flushSeconds = new Histogram({
    name: 'breakwater_flush_duration_seconds',
    help: 'Time to insert one batch into ClickHouse',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly flushSpans = new Histogram({
    name: 'breakwater_flush_batch_spans',
    help: 'Spans per ClickHouse insert',
    buckets: [1, 10, 100, 1000, 5000, 10000, 20000, 50000],
    registers: [this.registry],
  });
  readonly flushFailures = new Counter({
    name: 'breakwater_flush_failures_total',
    help: 'ClickHouse inserts that failed (their requests were answered 503 and retried by the exporter)',
    registers: [this.registry],
  });

  readonly decisionLatency = new Histogram({
    name: 'breakwater_decision_latency_seconds',
    help: 'From an OTLP request received to the decisions for its spans published',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly auditQueueDepth = new Gauge({
    name: 'breakwater_audit_queue_events',
    help: 'Audit events chained and in the write-ahead log, not yet confirmed by ClickHouse',
    registers: [this.registry],
  });
  readonly spansRedelivered = new Counter({
    name: 'breakwater_spans_redelivered_total',
    help: 'Spans of a request delivered again (an exporter retry), by what was skipped: the decision path, or storage too when the first delivery committed',
    labelNames: ['skipped'] as const,
    registers: [this.registry],
  });
  readonly auditWritten = new Counter({
    name: 'breakwater_audit_events_written_total',
    help: 'Audit events confirmed by ClickHouse',
    registers: [this.registry],
  });
  readonly auditCoalesced = new Counter({
    name: 'breakwater_audit_coalesced_total',
    help: 'Automated run-breaker transitions folded into the next event of their breaker while the audit queue was over its bound',
    registers: [this.registry],
  });
  readonly auditFlushFailures = new Counter({
    name: 'breakwater_audit_flush_failures_total',
    help: 'Audit batches ClickHouse refused (retried until they succeed; the events stay in the write-ahead log)',
    registers: [this.registry],
  });
  readonly auditReplayed = new Counter({
    name: 'breakwater_audit_replayed_total',
    help: 'Audit events a previous process left in the write-ahead log, written at start',
    registers: [this.registry],
  });

  readonly auditCheckpoints = new Counter({
    name: 'breakwater_audit_checkpoints_total',
    help: 'Signed checkpoints of the audit chain heads written',
    registers: [this.registry],
  });

  readonly auditCheckpointFailures = new Counter({
    name: 'breakwater_audit_checkpoint_failures_total',
    help: 'Audit checkpoints not written (retried at the next interval)',
    registers: [this.registry],
  });

  readonly auditIntegrityFailures = new Gauge({
    name: 'breakwater_audit_integrity_failures',
    help: 'Audit chains (tenants, and the checkpoint chain) that failed verification since this process started',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'breakwater_process_' });
  }
}
