import type { ModelPrice } from '../policy/policy-types.js';
import { BUILTIN_PRICES } from './builtin-prices.js';

// The one price lookup: the live windows, the stored cost column and the degradation ladder's
// price ratios all go through modelPrice, so a model costs the same everywhere.

type Prices = Readonly<Record<string, ModelPrice>>;

/**
 * Date suffixes providers append to a model family: OpenAI's `-2024-07-18` and `-0613`,
 * Anthropic's `-20241022`, Vertex's `@20240620`. Dropping one gives the name a price table uses.
 */
const DATE_SUFFIX = /(?:[-@](?:\d{4}-\d{2}-\d{2}|20\d{6})|-(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))$/;

/** The undated family of a dated model name (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`), else the name itself. */
export function modelFamily(model: string): string {
  const family = model.replace(DATE_SUFFIX, '');
  return family === '' ? model : family;
}

function own(prices: Prices, model: string): ModelPrice | undefined {
  return model !== '' && Object.hasOwn(prices, model) ? prices[model] : undefined;
}

function lookup(prices: Prices, responseModel: string, requestModel: string): ModelPrice | undefined {
  return (
    own(prices, responseModel) ??
    own(prices, modelFamily(responseModel)) ??
    own(prices, requestModel) ??
    own(prices, modelFamily(requestModel))
  );
}

/**
 * The price of a call: the response model, its undated family, then the requested model and its
 * family, in the policy's `prices` and then in the built-in table; undefined when none is priced.
 */
export function modelPrice(prices: Prices, responseModel: string, requestModel = ''): ModelPrice | undefined {
  let byResponse = answers.get(prices);
  if (byResponse === undefined) answers.set(prices, (byResponse = new Map()));
  let byRequest = byResponse.get(responseModel);
  if (byRequest === undefined) {
    if (byResponse.size >= MAX_REMEMBERED_MODELS) byResponse.clear();
    byResponse.set(responseModel, (byRequest = new Map()));
  }
  let price = byRequest.get(requestModel);
  if (price === undefined) {
    if (byRequest.size >= MAX_REMEMBERED_MODELS) byRequest.clear();
    price = lookup(prices, responseModel, requestModel) ?? lookup(BUILTIN_PRICES, responseModel, requestModel) ?? null;
    byRequest.set(requestModel, price);
  }
  return price ?? undefined;
}

// Every span asks for a price, from few model names: answers are remembered per price table (a
// policy's table is replaced, never changed, on a reload), bounded since the names come from tenants.
const answers = new WeakMap<Prices, Map<string, Map<string, ModelPrice | null>>>();
const MAX_REMEMBERED_MODELS = 1024;

/** USD for one call: tokens priced per million (modelPrice); 0 for a model without a price. */
export function callCostUsd(
  prices: Prices,
  responseModel: string,
  requestModel: string,
  inputTokens: number,
  outputTokens: number,
): number {
  if (inputTokens === 0 && outputTokens === 0) return 0;
  const price = modelPrice(prices, responseModel, requestModel);
  if (price === undefined) return 0;
  return (inputTokens * price.input + outputTokens * price.output) / 1_000_000;
}
