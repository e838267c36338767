// Provider rate-limit header names in every spelling instrumentations record them: bare, under the
// HTTP semantic conventions' `http.response.header.` prefix, and with `_` for `-` (Python's OTel
// HTTP instrumentations write `http.response.header.x_ratelimit_remaining_tokens`).

export const HEADER_PREFIX = 'http.response.header.';

/** The rate-limit headers the normalizer and the degradation path read. */
export const RATE_LIMIT_HEADERS = [
  'x-ratelimit-remaining-requests',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-limit-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-reset-requests',
  'x-ratelimit-reset-tokens',
  'retry-after',
  'retry-after-ms',
  'anthropic-ratelimit-requests-remaining',
  'anthropic-ratelimit-requests-limit',
  'anthropic-ratelimit-tokens-remaining',
  'anthropic-ratelimit-tokens-limit',
  'anthropic-ratelimit-requests-reset',
  'anthropic-ratelimit-tokens-reset',
  'anthropic-ratelimit-input-tokens-reset',
  'anthropic-ratelimit-output-tokens-reset',
] as const;

/** Every attribute key that spells one of them: kept past the attribute cap. */
export const RATE_LIMIT_HEADER_KEYS: readonly string[] = RATE_LIMIT_HEADERS.flatMap((name) => {
  const underscored = name.replaceAll('-', '_');
  return [name, underscored, HEADER_PREFIX + name, HEADER_PREFIX + underscored];
});

/**
 * The header an attribute key names, hyphenated ('x-ratelimit-remaining-tokens' for each of its
 * spellings); other keys come back without the prefix and otherwise unchanged. Only names that
 * can be a rate-limit header are rewritten, since this runs for every attribute of every span.
 */
export function headerName(key: string): string {
  const name = key.startsWith(HEADER_PREFIX) ? key.slice(HEADER_PREFIX.length) : key;
  if (name.startsWith('x_ratelimit_') || name.startsWith('anthropic_ratelimit_') || name.startsWith('retry_after')) return name.replaceAll('_', '-');
  return name;
}
