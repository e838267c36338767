// The attributes one request may have stored, counted as they are stored: the spans table keeps a
// resource's attributes on each of its rows, so a resource counts once per span under it. Without
// this, a small body with one large resource and many small spans costs storage, the encoder and
// ClickHouse the product of the two.

import type { AnyValue, KeyValue, OtlpEvent, OtlpLink, OtlpSpan } from '../codecs/otlp-model.js';

export interface AttributeBudget {
  /** attribute entries per request (resource, span, event and link attributes, as stored) */
  maxAttributes: number;
  /** bytes of attribute keys and values per request, as stored */
  maxBytes: number;
}

/** An attribute list's weight: its entries and (about) the bytes its keys and values take stored. */
export interface Weight {
  entries: number;
  bytes: number;
}

export function listWeight(attributes: readonly KeyValue[]): Weight {
  let bytes = 0;
  for (let i = 0; i < attributes.length; i++) {
    const { key, value } = attributes[i]!;
    bytes += key.length + valueBytes(value);
  }
  return { entries: attributes.length, bytes };
}

/** A span's own attributes, its events' and its links'. */
export function spanWeight(span: OtlpSpan): Weight {
  const weight = listWeight(span.attributes);
  addLists(weight, span.events);
  addLists(weight, span.links);
  return weight;
}

function addLists(weight: Weight, items: readonly (OtlpEvent | OtlpLink)[]): void {
  for (let i = 0; i < items.length; i++) {
    const w = listWeight(items[i]!.attributes);
    weight.entries += w.entries;
    weight.bytes += w.bytes;
  }
}

/** String lengths (UTF-16 units: close enough to count with); other scalars as 8 bytes. */
function valueBytes(value: AnyValue): number {
  if (typeof value === 'string') return value.length;
  if (value instanceof Uint8Array) return value.length * 2;
  if (Array.isArray(value)) {
    let n = 2;
    for (const v of value) n += valueBytes(v) + 1;
    return n;
  }
  if (typeof value === 'object' && value !== null) return 2 + listWeight(value.kvlist).bytes + value.kvlist.length * 4;
  return 8;
}

/** What is left of one request's budget: `take` admits a span's weight, or refuses it whole. */
export class RequestAttributeBudget {
  #entries: number;
  #bytes: number;
  readonly #maxBytes: number;

  constructor(budget: AttributeBudget) {
    this.#entries = budget.maxAttributes;
    this.#bytes = this.#maxBytes = budget.maxBytes;
  }

  /** bytes the admitted spans' attributes take stored */
  get usedBytes(): number {
    return this.#maxBytes - this.#bytes;
  }

  take(resource: Weight, span: Weight): boolean {
    const entries = resource.entries + span.entries;
    const bytes = resource.bytes + span.bytes;
    if (entries > this.#entries || bytes > this.#bytes) return false;
    this.#entries -= entries;
    this.#bytes -= bytes;
    return true;
  }
}

export function overBudgetReason(budget: AttributeBudget): string {
  return `over the request's attribute limit (${budget.maxAttributes} attributes or ${budget.maxBytes} bytes of them, a resource's counted once per span under it); send its spans in smaller requests`;
}
