// The policy file's `notifications:` section: webhooks for every tenant's events (`webhooks`) and
// for one tenant's own (`tenants.<id>.webhooks`), spelled like `auth.tenants.<id>`. Only the file
// sets them: no run-time change touches this section, so a tenant's token cannot point Breakwater
// at an address of its choosing.

import { z } from 'zod';
import { resolveSecret } from '../api/secrets.js';
import type { SecretRef } from '../policy/policy-types.js';
import { NOTIFICATION_TYPES, type NotificationType } from './notification-event.js';

export const WEBHOOK_FORMATS = ['json', 'slack'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

export interface WebhookEntry {
  url: string;
  secret: SecretRef;
  events: NotificationType[];
  format: WebhookFormat;
}

export interface DeliverySettings {
  /** events waiting per endpoint; past it the oldest is dropped */
  maxQueue: number;
  /** attempts per event before it is given up */
  maxAttempts: number;
  /** per request */
  timeoutMs: number;
  /** the first retry's delay; doubled each attempt, with jitter */
  backoffMs: number;
  /** cap of the delay, Retry-After included */
  maxBackoffMs: number;
}

export interface NotificationsSection {
  webhooks: WebhookEntry[];
  tenants: Record<string, { webhooks: WebhookEntry[] }>;
  delivery: DeliverySettings;
}

export const DEFAULT_DELIVERY: DeliverySettings = { maxQueue: 1000, maxAttempts: 10, timeoutMs: 10_000, backoffMs: 1000, maxBackoffMs: 300_000 };
export const EMPTY_NOTIFICATIONS: NotificationsSection = { webhooks: [], tenants: {}, delivery: DEFAULT_DELIVERY };

const MAX_WEBHOOKS = 20;
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** http(s) only; plain http only to a loopback host, so events and signatures do not cross a network in clear. */
export function webhookUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `must be an http(s) URL, not ${url.protocol}`;
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) return 'must use https (plain http is accepted only for a loopback host)';
  return undefined;
}

const count = (max: number) => z.int().positive('must be a positive whole number').max(max, `must be at most ${max}`);

/**
 * The section's schema, built from policy-schema's secret and tenant id rules (passed in, because
 * policy-schema imports this module and an import cycle would read them before they exist).
 */
export function notificationsSectionSchema(secret: z.ZodType<SecretRef>, tenantId: z.ZodType<string>) {
  const webhook = z.strictObject({
    url: z.string().max(2048, 'must be at most 2048 characters').superRefine((url, ctx) => {
      const problem = webhookUrlProblem(url);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    }),
    secret: z
      .unknown()
      .superRefine((value, ctx) => {
        // `${NAME}` is a shell's spelling; the file's is `{ env: NAME }`, as in `auth:`
        if (typeof value === 'string' && /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(value)) {
          ctx.addIssue({ code: 'custom', message: 'to read the secret from an environment variable write { env: NAME }, not ${NAME}' });
        }
      })
      .pipe(secret),
    events: z.array(z.enum(NOTIFICATION_TYPES)).min(1, 'must name at least one event').default([...NOTIFICATION_TYPES]),
    format: z.enum(WEBHOOK_FORMATS).default('json'),
  });
  const webhooks = z.array(webhook).max(MAX_WEBHOOKS, `at most ${MAX_WEBHOOKS} webhooks`).default([]);
  return z
    .strictObject({
      webhooks,
      tenants: z.record(tenantId, z.strictObject({ webhooks })).default({}),
      delivery: z
        .strictObject({
          maxQueue: count(1_000_000),
          maxAttempts: count(100),
          timeoutMs: count(600_000),
          backoffMs: count(3_600_000),
          maxBackoffMs: count(86_400_000),
        })
        .partial()
        .prefault({})
        .transform((d): DeliverySettings => ({ ...DEFAULT_DELIVERY, ...d })),
    })
    .prefault({}) satisfies z.ZodType<NotificationsSection, unknown>;
}

/** One endpoint, secret read: what the dispatcher delivers to. */
export interface WebhookEndpointConfig {
  /** the policy path, e.g. `notifications.tenants.acme.webhooks[0]`: names it in metrics and logs, never the URL */
  name: string;
  /** the tenant whose events alone it receives; undefined: every tenant's */
  tenantId?: string;
  url: string;
  secret: string;
  events: ReadonlySet<NotificationType>;
  format: WebhookFormat;
}

/** Every endpoint of the section with its secret read; a SecretError names the entry, never the value. */
export function resolveWebhookEndpoints(section: NotificationsSection, env: NodeJS.ProcessEnv): WebhookEndpointConfig[] {
  const resolve = (entry: WebhookEntry, name: string, tenantId?: string): WebhookEndpointConfig => ({
    name,
    ...(tenantId === undefined ? {} : { tenantId }),
    url: entry.url,
    secret: resolveSecret(entry.secret, env, `${name}.secret`),
    events: new Set(entry.events),
    format: entry.format,
  });
  return [
    ...section.webhooks.map((entry, i) => resolve(entry, `notifications.webhooks[${i}]`)),
    ...Object.entries(section.tenants).flatMap(([tenantId, { webhooks }]) =>
      webhooks.map((entry, i) => resolve(entry, `notifications.tenants.${tenantId}.webhooks[${i}]`, tenantId)),
    ),
  ];
}
