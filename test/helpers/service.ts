import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type ServiceConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/log.js';
import { startService, type Service } from '../../src/app/service.js';
import { writePolicy } from './spans.js';

/** A temp data dir; chdb binds one per process, so a test file reuses it across restarts. */
export function tempDataDir(prefix = 'bw-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function testConfig(overrides: Partial<ServiceConfig> & { dataDir: string }): ServiceConfig {
  const base = loadConfig(['--otlp-port', '0', '--graphql-port', '0', '--log-level', 'silent', '--batch-max-delay-ms', '5'], {});
  return { ...base, ...overrides };
}

export async function startTestService(overrides: Partial<ServiceConfig> & { dataDir: string }): Promise<Service> {
  const config = testConfig(overrides);
  return startService(config, createLogger(config.logLevel));
}

/** A service in a new data dir, on a policy file holding `yaml`. */
export async function startWithPolicy(yaml: string): Promise<Service> {
  const dataDir = tempDataDir();
  return startTestService({ dataDir, policyFile: writePolicy(dataDir, yaml), policyFileExplicit: true });
}
