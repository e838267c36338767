// The `breakwater-signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. The
// timestamp is inside the MAC, so a receiver that checks its age refuses a replayed request.

import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'breakwater-signature';

export function signatureOf(body: string, secret: string, unixSeconds: number): string {
  return createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
}

export function signatureHeader(body: string, secret: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${signatureOf(body, secret, unixSeconds)}`;
}

/** What a receiver does (docs/notifications.md shows the same in a few lines): true when `header` signs `body` with `secret` and is at most `toleranceSeconds` old. */
export function verifySignature(header: string, body: string, secret: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || !/^[0-9a-f]{64}$/.test(v1)) return false;
  return timingSafeEqual(Buffer.from(v1, 'hex'), Buffer.from(signatureOf(body, secret, t), 'hex'));
}
