// Caps on attribute counts, applied while decoding (as the OTel SDK's attributeCountLimit is applied
// while recording): a span, resource, scope, event or link keeps at most `perList` attributes and
// the rest are counted in its droppedAttributesCount. The attributes Breakwater itself reads are
// kept past the cap, so a chat span with hundreds of `llm.input_messages.N.*` still names its
// tenant, model and token usage.

import { ERROR_TEXT_KEYS } from '../normalize/call-outcome.js';
import { CONVENTION_KEYS } from '../normalize/conventions.js';
import { RATE_LIMIT_HEADER_KEYS } from '../normalize/rate-limit-headers.js';
import type { KeyValue } from './otlp-model.js';

export interface AttributeLimits {
  /** most attributes kept on one span, resource, scope, event or link */
  perList: number;
}


/**
 * Keys the normalizer, the windows and the degradation path read (normalize.ts, conventions.ts, span-signals.ts):
 * a fixed set, so what is kept past the cap stays bounded however the sender repeats them.
 */
export const READ_ATTRIBUTES: ReadonlySet<string> = new Set([
  'tenant.id',
  'service.name',
  'agent.run.id',
  'agent.depth',
  'gen_ai.operation.name',
  'gen_ai.provider.name',
  'gen_ai.system',
  'llm.provider',
  'llm.system',
  'gen_ai.request.model',
  'llm.model_name',
  'gen_ai.response.model',
  'gen_ai.tool.name',
  'tool.name',
  'gen_ai.agent.id',
  'gen_ai.agent.name',
  'gen_ai.conversation.id',
  'gen_ai.usage.input_tokens',
  'gen_ai.usage.prompt_tokens',
  'llm.token_count.prompt',
  'gen_ai.usage.output_tokens',
  'gen_ai.usage.completion_tokens',
  'llm.token_count.completion',
  'http.response.status_code',
  'http.status_code',
  'openinference.span.kind',
  'breakwater.task',
  'breakwater.preflight.tokens',
  'breakwater.preflight.reserved',
  'gen_ai.provider.key',
  'provider.key',
  'breakwater.provider.key',
  ...RATE_LIMIT_HEADER_KEYS,
  ...CONVENTION_KEYS,
  ...ERROR_TEXT_KEYS,
]);

/**
 * One attribute list that reached the cap while decoding. `slot` says where a later attribute
 * goes: at the end (the first occurrence of a read key), over its earlier occurrence (last wins,
 * as the stored maps keep it), or nowhere (-1: dropped).
 */
export class CappedList {
  #readAt: Map<string, number> | undefined;

  constructor(readonly list: KeyValue[]) {}

  /** Where the attribute with `key` is kept: list.length to append, an index to replace, -1 to drop it. */
  slot(key: string | undefined): number {
    if (key === undefined || !READ_ATTRIBUTES.has(key)) return -1;
    const readAt = (this.#readAt ??= this.#indexReadKeys());
    const at = readAt.get(key);
    if (at !== undefined) return at;
    readAt.set(key, this.list.length);
    return this.list.length;
  }

  put(at: number, kv: KeyValue): void {
    this.list[at] = kv;
  }

  #indexReadKeys(): Map<string, number> {
    const readAt = new Map<string, number>();
    for (let i = 0; i < this.list.length; i++) {
      const key = this.list[i]!.key;
      if (READ_ATTRIBUTES.has(key)) readAt.set(key, i);
    }
    return readAt;
  }
}

/** Counts added to a dropped count the sender sent, saturating at uint32 as the field is. */
export function addDropped(count: number, dropped: number): number {
  return Math.min(0xffff_ffff, count + dropped);
}
