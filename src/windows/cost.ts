import type { ModelPrice } from '../policy/policy-types.js';

/** USD for one call: tokens priced per million by the response model, else the requested one. */
export function callCostUsd(
  prices: Readonly<Record<string, ModelPrice>>,
  model: string,
  inputTokens: number,
  outputTokens: number,
): number {
  if (!Object.hasOwn(prices, model)) return 0;
  const price = prices[model] as ModelPrice;
  if (inputTokens === 0 && outputTokens === 0) return 0;
  return (inputTokens * price.input + outputTokens * price.output) / 1_000_000;
}
