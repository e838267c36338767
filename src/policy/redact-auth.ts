// Takes the secrets of a policy file's `auth:` and `notifications:` sections (tokens, webhook
// secrets, webhook URLs, which for Slack are secrets themselves) out of the problems reported about that
// file: a parse error's key path, a wrong value quoted back, or a message of the YAML library may
// otherwise carry a token into the log. Works on the raw lines, because a file that does not
// parse has no trustworthy tree to read the tokens from.

import { PolicyError, type PolicyIssue } from './policy-error.js';

export const REDACTED = '[redacted]';

/** Shorter words are schema names, numbers or booleans, not secrets worth hiding. */
const MIN_CANDIDATE_LENGTH = 8;

/** Keys the auth section is written with; the only long words in it that are not secrets. */
const AUTH_KEY_NAMES = new Set(['adminTokens', 'agentTokens', 'apiTokens', 'ingestKeys', 'tenants', 'notifications', 'webhooks', 'delivery', 'maxQueue', 'maxAttempts', 'timeoutMs', 'backoffMs', 'maxBackoffMs', 'escalation', 'consent_request', 'tier_change']);

/** The lines of the top-level sections holding secrets: from `auth:` or `notifications:` to the next line that starts at column 0. */
function authLines(text: string): string[] {
  const lines = text.split(/\r?\n|\r/);
  const taken: string[] = [];
  let inside = false;
  for (const line of lines) {
    const topLevel = /^[^\s#]/.test(line);
    if (topLevel) inside = /^["']?(auth|notifications)["']?\s*:/.test(line);
    if (inside) taken.push(line);
  }
  return taken;
}

/** The tenant ids of the section: keys on their own line one level under `tenants:`. */
function tenantIdLines(lines: readonly string[]): Set<number> {
  const ids = new Set<number>();
  let tenantsIndent: number | undefined;
  let idIndent: number | undefined;
  lines.forEach((line, index) => {
    if (/^\s*(#.*)?$/.test(line)) return;
    const indent = /^\s*/.exec(line)![0].length;
    if (tenantsIndent !== undefined && indent <= tenantsIndent) tenantsIndent = idIndent = undefined;
    if (/^\s*["']?tenants["']?\s*:\s*(#.*)?$/.test(line)) {
      tenantsIndent = indent;
      return;
    }
    if (tenantsIndent === undefined) return;
    idIndent ??= indent;
    if (indent === idIndent) ids.add(index);
  });
  return ids;
}

/**
 * Words of the auth section that could be a secret. A tenant id (a key on its own line right
 * under `tenants:`) is kept, so messages still say which tenant is meant.
 */
export function authSecretCandidates(text: string): string[] {
  const found = new Set<string>();
  const lines = authLines(text);
  const idLines = tenantIdLines(lines);
  lines.forEach((line, index) => {
    const tenantId = idLines.has(index) ? /^\s*["']?([^\s"':]+)["']?\s*:(?:\s|$)/.exec(line)?.[1] : undefined;
    for (const raw of line.split(/[\s[\]{},"'#]+/)) {
      const word = raw.replace(/^[-:&*!]+/, '').replace(/:+$/, '');
      if (word.length < MIN_CANDIDATE_LENGTH || AUTH_KEY_NAMES.has(word) || word === tenantId) continue;
      found.add(word);
      // a line quoted back whole (a YAML excerpt) shows the token with its punctuation around it
      if (raw !== word) found.add(raw);
    }
  });
  // longest first: a token that contains another is replaced whole
  return [...found].sort((a, b) => b.length - a.length);
}

function redactText(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) result = result.split(secret).join(REDACTED);
  // describe-issue.ts shortens a quoted string to 40 characters and an ellipsis: the prefix is secret too
  return result.replace(/"([^"]{8,})…"/g, (quoted, prefix: string) =>
    secrets.some((secret) => secret.startsWith(prefix)) ? `"${REDACTED}"` : quoted,
  );
}

/** The same error with every secret of `text`'s auth section replaced in its messages and paths. */
export function redactAuthSecrets(error: PolicyError, text: string): PolicyError {
  const secrets = authSecretCandidates(text);
  if (secrets.length === 0) return error;
  const issues = error.issues.map(
    (issue): PolicyIssue => ({ ...issue, path: redactText(issue.path, secrets), message: redactText(issue.message, secrets) }),
  );
  return new PolicyError(issues, error.omittedIssues);
}
