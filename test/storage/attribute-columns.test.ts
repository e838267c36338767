import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anyValueText, attributeColumns } from '../../src/storage/attribute-columns.js';

describe('Attribute text', () => {
  it('writes an int as BigInt#toString does, at the edges of a double’s exact integers and of int64', () => {
    const safe = BigInt(Number.MAX_SAFE_INTEGER);
    const edges = [0n, 1n, -1n, 900n, safe, safe + 1n, safe + 2n, -safe, -safe - 1n, -safe - 2n, 2n ** 63n - 1n, -(2n ** 63n), 10n ** 17n + 1n];
    for (const value of edges) expect(anyValueText(value)).toBe(value.toString());
    fc.assert(fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (value) => anyValueText(value) === value.toString()));
  });

  it('keeps the type of every value that is not a string', () => {
    expect(attributeColumns([{ key: 'n', value: 7n }, { key: 'd', value: 7 }, { key: 's', value: '7' }])).toEqual({
      values: { n: '7', d: '7', s: '7' },
      types: { n: 'int', d: 'double' },
    });
  });
});
