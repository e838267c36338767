// Breakwater in the benchmark's own process, on a fresh embedded store under the bench policy.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/app/config.js';
import { createLogger } from '../src/app/log.js';
import { startService, type Service } from '../src/app/service.js';

export interface BenchService {
  service: Service;
  /** stops the service and removes its data directory */
  stop(): Promise<void>;
}

/** `flags` are CLI flags on top of ephemeral ports, error-level logs and `policyFile`. */
export async function startBenchService(name: string, flags: readonly string[] = [], policyFile = 'bench/policy.yaml'): Promise<BenchService> {
  const dataDir = mkdtempSync(join(tmpdir(), `bw-${name}-`));
  const config = loadConfig(['--otlp-port', '0', '--graphql-port', '0', '--gateway-port', '0', '--log-level', 'error', '--data-dir', dataDir, '--config', policyFile, ...flags], {});
  const service = await startService(config, createLogger(config.logLevel));
  return {
    service,
    async stop() {
      await service.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
