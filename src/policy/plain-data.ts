// Helpers for the plain JSON-like data a policy is made of (objects of numbers and strings).

type PlainObject = Record<string, unknown>;

function isPlainObject(value: unknown): value is PlainObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Lays `patch` over `base` the way RFC 7396 (JSON Merge Patch) does: objects merge key by key,
 * null deletes the key, anything else replaces. Neither argument is modified; untouched branches
 * of `base` are shared with the result.
 */
export function mergePatch<T>(base: T, patch: unknown): T {
  if (!isPlainObject(patch)) return patch as T;
  const result: PlainObject = isPlainObject(base) ? { ...base } : {};
  for (const [key, value] of Object.entries(patch)) {
    // validated policy data never has this key; skipping it keeps a stray one from setting a prototype
    if (value === undefined || key === '__proto__') continue;
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result as T;
}

/** Freezes a plain-data value in place and returns it: shared policy objects must not be edited by a reader. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
