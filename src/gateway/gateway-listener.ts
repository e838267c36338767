// The gateway's HTTP server, wired to the service's decisions, policy, authenticator and pipeline.

import { createServer, type Server, type ServerOptions } from 'node:http';
import type { IngestPipeline } from '../app/pipeline.js';
import type { Logger } from '../app/log.js';
import type { Authenticator } from '../api/auth.js';
import type { DecisionBus } from '../decisions/decision-bus.js';
import type { PolicyStore } from '../policy/policy-store.js';
import { createGatewayHandler } from './gateway-server.js';

export interface GatewayOptions {
  openaiUrl: string;
  anthropicUrl: string;
  upstreamTimeoutMs: number;
  maxBodyBytes: number;
  env: NodeJS.ProcessEnv;
}

export function createGatewayServer(
  parts: { auth: () => Authenticator; bus: Pick<DecisionBus, 'latest'>; policy: Pick<PolicyStore, 'forTenant'>; pipeline: Pick<IngestPipeline, 'ingest'>; log: Logger },
  options: GatewayOptions,
  serverOptions: ServerOptions,
): Server {
  const { auth, bus, policy, pipeline, log } = parts;
  const handler = createGatewayHandler({
    tenantForKey: (key) => auth().tenantForGatewayKey(key),
    decision: (tenantId, runId) => bus.latest(tenantId, runId),
    probeSteps: (tenantId) => policy.forTenant(tenantId).breaker.probeSteps,
    ingest: (request, tenantId) => {
      pipeline.ingest(request, { keyTenant: tenantId, receivedAt: Date.now() }).then(
        (outcome) => {
          if (outcome.kind === 'retry') log.warn({ tenant: tenantId, reason: outcome.message }, 'gateway call not stored: the write queue refused it');
        },
        (err: unknown) => log.error({ tenant: tenantId, error: (err as Error).message }, 'gateway call not stored'),
      );
    },
    upstreams: {
      openai: { url: options.openaiUrl, key: options.env.OPENAI_API_KEY || undefined },
      anthropic: { url: options.anthropicUrl, key: options.env.ANTHROPIC_API_KEY || undefined },
    },
    maxBodyBytes: options.maxBodyBytes,
    upstreamTimeoutMs: options.upstreamTimeoutMs,
    onError: (message, err) => log.error({ error: (err as Error).message }, message),
  });
  return createServer(serverOptions, handler);
}
