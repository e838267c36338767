import { pino, type Logger } from 'pino';
import type { ServiceConfig } from './config.js';

export type { Logger };

/** Structured JSON logs on stdout; secrets are redacted wherever a config object is logged. */
export function createLogger(level: ServiceConfig['logLevel']): Logger {
  return pino({
    level,
    base: { service: 'breakwater' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['*.clickhousePassword', 'clickhousePassword', '*.token', '*.tokens', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
  });
}
