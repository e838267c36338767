import { createHash } from 'node:crypto';

/** SHA-256 of a token: what is compared and kept in place of the token itself. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
