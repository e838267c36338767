// The one price lookup (src/windows/cost.ts) that the windows, the stored cost column and the
// degradation ladder share: dated names fall back to their family, then to the requested model.
import { describe, expect, it } from 'vitest';
import { BUILTIN_PRICES } from '../../src/windows/builtin-prices.js';
import { callCostUsd, modelFamily, modelPrice } from '../../src/windows/cost.js';

const PRICES = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
  'claude-3-5-sonnet': { input: 3, output: 15 },
  'gpt-4': { input: 30, output: 60 },
};

describe('model prices', () => {
  it.each([
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
    ['claude-3-5-sonnet-20241022', 'claude-3-5-sonnet'],
    ['claude-3-5-sonnet@20240620', 'claude-3-5-sonnet'],
    ['gpt-4-0613', 'gpt-4'],
    ['gpt-4o', 'gpt-4o'],
    ['llama-3.1-405b', 'llama-3.1-405b'],
    ['gemini-1.5-pro-002', 'gemini-1.5-pro-002'],
  ])('the family of %s is %s', (model, family) => {
    expect(modelFamily(model)).toBe(family);
  });

  it('prices a dated response model by its undated family', () => {
    expect(modelPrice(PRICES, 'gpt-4o-mini-2024-07-18')).toEqual(PRICES['gpt-4o-mini']);
    expect(modelPrice(PRICES, 'claude-3-5-sonnet-20241022')).toEqual(PRICES['claude-3-5-sonnet']);
    expect(callCostUsd(PRICES, 'gpt-4o-mini-2024-07-18', 'gpt-4o-mini', 1_000_000, 1_000_000)).toBeCloseTo(0.75, 12);
  });

  it('falls back to the request model when the response model has no price', () => {
    expect(callCostUsd(PRICES, 'gpt-4o-custom-build', 'gpt-4o', 1_000_000, 0)).toBeCloseTo(2.5, 12);
    expect(callCostUsd(PRICES, 'my-fine-tune', 'gpt-4o-2024-08-06', 0, 1_000_000)).toBeCloseTo(10, 12);
  });

  it('keeps an exact price over the family one, and costs 0 without any price', () => {
    expect(modelPrice({ ...PRICES, 'gpt-4o-2024-08-06': { input: 1, output: 1 } }, 'gpt-4o-2024-08-06')).toEqual({ input: 1, output: 1 });
    expect(callCostUsd(PRICES, 'unknown-2024-01-01', 'constructor', 1_000, 1_000)).toBe(0);
    expect(modelPrice(PRICES, '', '')).toBeUndefined();
  });

  it('prices common models without a policy entry from the built-in table, which prices: overrides', () => {
    expect(callCostUsd({}, 'gpt-4o-mini-2024-07-18', 'gpt-4o-mini', 1_000_000, 1_000_000)).toBeCloseTo(0.75, 12);
    expect(modelPrice({}, 'claude-3-5-sonnet-20241022')).toEqual({ input: 3, output: 15 });
    expect(modelPrice({ 'gpt-4o-mini': { input: 1, output: 2 } }, 'gpt-4o-mini-2024-07-18')).toEqual({ input: 1, output: 2 });
    // The policy's price for the requested model wins over a built-in one for the response model.
    expect(modelPrice({ 'my-alias': { input: 7, output: 7 } }, 'gpt-4o', 'my-alias')).toEqual({ input: 7, output: 7 });
    expect(modelPrice({ 'gpt-4o-mini': { input: 0, output: 0 } }, 'gpt-4o-mini')).toEqual({ input: 0, output: 0 });
    for (const [model, price] of Object.entries(BUILTIN_PRICES)) {
      expect(modelFamily(model), model).toBe(model);
      expect(price.input >= 0 && price.output >= price.input / 10, model).toBe(true);
    }
  });

  it('answers from each price table of its own, however many names tenants send', () => {
    const before = { 'acme-1': { input: 1, output: 2 } };
    const reloaded = { 'acme-1': { input: 5, output: 6 } };
    expect(modelPrice(before, 'acme-1')).toEqual(before['acme-1']);
    expect(modelPrice(reloaded, 'acme-1')).toEqual(reloaded['acme-1']);
    // Past the remembered bound the answers are still the table's.
    for (let i = 0; i < 3000; i++) expect(modelPrice(before, `junk-${i}`, i % 2 === 0 ? 'acme-1' : `junk-${i}`)).toEqual(i % 2 === 0 ? before['acme-1'] : undefined);
    expect(modelPrice(before, 'acme-1')).toEqual(before['acme-1']);
  });
});
