import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Storage that cannot be opened, said in one line that names the setting to change. */
export class StorageError extends Error {
  override readonly name = 'StorageError';
}

/** Why the embedded engine could not open `dataDir`, naming the flag. */
export function embeddedOpenError(dataDir: string, cause: unknown): StorageError {
  const holder = otherHolder(dataDir);
  if (holder !== undefined) {
    return new StorageError(`the data directory ${dataDir} is in use by another process (pid ${holder}): stop it, or give this one another --data-dir (BREAKWATER_DATA_DIR)`, { cause });
  }
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new StorageError(`cannot open the embedded ClickHouse in ${dataDir}: ${reason}; check that --data-dir (BREAKWATER_DATA_DIR) is a directory this user can write`, { cause });
}

/** The live process, other than this one, that ClickHouse's status file says holds the directory. */
function otherHolder(dataDir: string): number | undefined {
  let status: string;
  try {
    status = readFileSync(join(dataDir, 'status'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(/^PID: (\d+)$/m.exec(status)?.[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    // EPERM: alive, but another user's
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/** Whether an error means the server could not be reached (worth retrying at start), not that it refused us. */
export function isUnreachable(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && UNREACHABLE_CODES.has(code)) return true;
    if (/socket hang up|Timeout error/i.test(e.message)) return true;
  }
  return false;
}
