import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveSecret } from '../api/secrets.js';

export const AUDIT_KEY_ENV = 'BREAKWATER_AUDIT_KEY';

export interface AuditKey {
  key: Buffer;
  /** where it came from, for the log (never the key) */
  source: string;
}

/**
 * The key that signs audit checkpoints: BREAKWATER_AUDIT_KEY, else the named file, else a key
 * generated once into the data directory. It is never written to ClickHouse; kept in the data
 * directory it protects against someone who can write ClickHouse but not this host.
 */
export function resolveAuditKey(env: NodeJS.ProcessEnv, keyFile: string | undefined, dataDir: string): AuditKey {
  if (env[AUDIT_KEY_ENV] !== undefined) {
    return { key: Buffer.from(resolveSecret({ env: AUDIT_KEY_ENV }, env, 'audit key'), 'utf8'), source: `environment variable ${AUDIT_KEY_ENV}` };
  }
  if (keyFile !== undefined) return { key: Buffer.from(resolveSecret({ file: keyFile }, env, 'audit key'), 'utf8'), source: keyFile };
  const generated = join(dataDir, 'audit-key');
  if (!existsSync(generated)) {
    mkdirSync(dataDir, { recursive: true });
    // 'wx': two processes starting on one data dir must not each write a key of their own
    try {
      writeFileSync(generated, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return { key: Buffer.from(resolveSecret({ file: generated }, env, 'audit key'), 'utf8'), source: `${generated} (generated)` };
}
