/**
 * Where the SDK says what it does on its own (connection lost, decisions stale, hooks that threw).
 * Message first, fields second; for pino pass `{ warn: (m, f) => log.warn(f, m), ... }`.
 */
export interface SdkLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The default: one line on stderr per message, never on stdout (stdout belongs to the application). */
export const consoleLogger: SdkLogger = {
  info: (message, fields) => write('info', message, fields),
  warn: (message, fields) => write('warn', message, fields),
  error: (message, fields) => write('error', message, fields),
};

function write(level: string, message: string, fields: Record<string, unknown> | undefined): void {
  const suffix = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
  process.stderr.write(`breakwater/sdk ${level}: ${message}${suffix}\n`);
}

export const silentLogger: SdkLogger = { info: () => {}, warn: () => {}, error: () => {} };
