// What a tenant admin may do to its own breakers: open a closed (or disabled) one, close a disabled
// one, and change what one of its own tokens forced open. A breaker the platform forced open, or that
// tripped by the policy's rules, is left to those rules or to a platform admin: forcing it open for
// a short while, or resetting it, would lift it early.

import { isTenantActor } from '../api/auth.js';
import type { BreakerView } from './breaker-engine.js';

/** Why a tenant admin may not force open or reset `breaker`, or undefined. */
export function tenantOperationRefusal(breaker: BreakerView, tenantId: string): string | undefined {
  switch (breaker.state) {
    case 'CLOSED':
    case 'DISABLED':
      return undefined;
    case 'FORCED_OPEN':
      return isTenantActor(breaker.forcedBy, tenantId) ? undefined : 'the platform forced this breaker open; only a platform admin can change it';
    case 'OPEN':
    case 'HALF_OPEN':
      return `the breaker is ${breaker.state} by the policy's rules; it recovers by them, or a platform admin resets it`;
  }
}
