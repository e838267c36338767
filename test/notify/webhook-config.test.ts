import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SCHEMA_FILE } from '../../src/api/graphql-server.js';
import { SecretError } from '../../src/api/secrets.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { PolicyError } from '../../src/policy/policy-error.js';
import { startWithPolicy } from '../helpers/service.js';

// A wrong notifications section stops the start with a message naming the line and the entry,
// and never quoting a webhook secret or URL.

const SECRET = 'hook-SECRET-value-0123456789abcdef';
const SLACK_URL = 'https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX';

function problems(yaml: string): string {
  try {
    parsePolicy(yaml, 'breakwater.yaml');
  } catch (error) {
    if (error instanceof PolicyError) return error.message;
    throw error;
  }
  throw new Error('the policy was accepted');
}

describe('the notifications section of the policy file', () => {
  it('reads platform-wide and per-tenant webhooks with their defaults', () => {
    const doc = parsePolicy(
      `notifications:\n  webhooks:\n    - { url: "${SLACK_URL}", secret: { env: HOOK }, format: slack, events: [trip] }\n  tenants:\n    acme:\n      webhooks: [{ url: "http://127.0.0.1:9/hook", secret: "${SECRET}" }]\n`,
      'breakwater.yaml',
    );
    expect(doc.notifications.webhooks[0]).toEqual({ url: SLACK_URL, secret: { env: 'HOOK' }, format: 'slack', events: ['trip'] });
    expect(doc.notifications.tenants.acme!.webhooks[0]).toMatchObject({ format: 'json', events: ['trip', 'escalation', 'consent_request', 'tier_change'] });
    expect(doc.notifications.delivery).toMatchObject({ maxQueue: 1000, maxAttempts: 10 });
    expect(parsePolicy('', 'breakwater.yaml').notifications.webhooks).toEqual([]);
  });

  it.each([
    ['not a URL', `url: "no url here", secret: "${SECRET}"`, 'notifications.webhooks[0].url: must be an absolute http(s) URL'],
    ['plain http to another host', `url: "http://hooks.example.com/x", secret: "${SECRET}"`, 'notifications.webhooks[0].url: must use https (plain http is accepted only for a loopback host)'],
    ['another scheme', `url: "file:///etc/passwd", secret: "${SECRET}"`, 'notifications.webhooks[0].url: must be an http(s) URL, not file:'],
    ['no secret', `url: "${SLACK_URL}"`, 'notifications.webhooks[0].secret'],
    ['a shell-style variable as the secret', `url: "${SLACK_URL}", secret: "\${HOOK_SECRET}"`, 'write { env: NAME }, not ${NAME}'],
    ['a short secret', `url: "${SLACK_URL}", secret: "short"`, 'at least 16 characters'],
    ['an unknown event', `url: "${SLACK_URL}", secret: "${SECRET}", events: [trips]`, 'notifications.webhooks[0].events[0]'],
    ['an unknown format', `url: "${SLACK_URL}", secret: "${SECRET}", format: teams`, 'notifications.webhooks[0].format'],
  ])('refuses %s, naming the line and the entry', (_, entry, expected) => {
    const message = problems(`notifications:\n  webhooks:\n    - { ${entry} }\n`);
    expect(message).toContain('breakwater.yaml:3:');
    expect(message).toContain(expected);
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain('XXXXSECRETXXXX');
  });

  it('refuses a misspelt key under a tenant, saying which tenant', () => {
    expect(problems(`notifications:\n  tenants:\n    acme:\n      webhook: []\n`)).toContain('notifications.tenants.acme.webhook: unknown key (did you mean webhooks?)');
  });

  it('keeps the secret and the URL out of messages that would quote them', () => {
    for (const yaml of [
      // a secret pasted where a key goes: the unknown key's path would carry it
      `notifications:\n  webhooks:\n    - { url: "${SLACK_URL}", ${SECRET}: x }\n`,
      `notifications:\n  tenants:\n    acme:\n      webhooks: [{ url: "${SLACK_URL}", secret: "${SECRET}" }]\n      ${SLACK_URL}: x\n`,
      `notifications:\n  webhooks:\n    - { url: "${SLACK_URL}", secret: "${SECRET}" \n`,
    ]) {
      const message = problems(yaml);
      expect(message).toContain('breakwater.yaml:');
      expect(message).not.toContain(SECRET);
      expect(message).not.toContain('XXXXSECRETXXXX');
    }
  });

  it('stops the start naming the entry when the secret environment variable is not set', async () => {
    delete process.env.BW_TEST_MISSING_HOOK_SECRET;
    const start = startWithPolicy(`notifications:\n  tenants:\n    acme:\n      webhooks: [{ url: "${SLACK_URL}", secret: { env: BW_TEST_MISSING_HOOK_SECRET } }]\n`);
    await expect(start).rejects.toThrow(SecretError);
    await expect(start).rejects.toThrow('notifications.tenants.acme.webhooks[0].secret: environment variable BW_TEST_MISSING_HOOK_SECRET is not set');
  });

  it('stops the start on a bad URL with the policy error', async () => {
    await expect(startWithPolicy(`notifications:\n  webhooks: [{ url: "ftp://x", secret: "${SECRET}" }]\n`)).rejects.toThrow(/notifications\.webhooks\[0\]\.url: must be an http\(s\) URL, not ftp:/);
  });

  it('has no API to set a webhook: a tenant token cannot choose where Breakwater sends requests', () => {
    // guards SSRF: a mutation or input taking a URL or the notifications section would have to pass review here
    const schema = readFileSync(SCHEMA_FILE, 'utf8');
    expect(schema).not.toMatch(/webhook|notifications/i);
  });
});
