import type { SdkLogger } from '../../src/sdk/index.js';

export interface LogLine {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

/** An SDK logger that keeps its lines for the test to read. */
export function memoryLogger(): SdkLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, ...(fields ? { fields } : {}) });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

/** Polls `predicate` every 2 ms until it holds, or throws after `timeoutMs` naming `what`. */
export async function waitUntil(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
