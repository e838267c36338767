import { mkdtempSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
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
  const base = loadConfig(['--otlp-port', '0', '--graphql-port', '0', '--gateway-port', '0', '--log-level', 'silent', '--batch-max-delay-ms', '5'], {});
  return { ...base, ...overrides };
}

export async function startTestService(overrides: Partial<ServiceConfig> & { dataDir: string }, logger?: Logger): Promise<Service> {
  const config = testConfig(overrides);
  return startService(config, logger ?? createLogger(config.logLevel));
}

export interface LogLine {
  msg: string;
  tenantId?: string | null;
  reason?: string;
  [field: string]: unknown;
}

/** A logger at warn whose lines are parsed into `lines`, for tests of what is logged. */
export function capturedLog(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, sink), lines };
}

/** The refusal log's lines for `reason`. */
export function refusalLines(lines: readonly LogLine[], reason: string): LogLine[] {
  return lines.filter((line) => line.reason === reason && 'sinceMs' in line);
}

/** A counter's value in a service's /metrics registry, for one set of labels. */
export async function counterValue(service: Service, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = service.metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const found = values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value));
  return found?.value ?? 0;
}

/** A service in a new data dir, on a policy file holding `yaml`. */
export async function startWithPolicy(yaml: string, logger?: Logger): Promise<Service> {
  const dataDir = tempDataDir();
  return startTestService({ dataDir, policyFile: writePolicy(dataDir, yaml), policyFileExplicit: true }, logger);
}
