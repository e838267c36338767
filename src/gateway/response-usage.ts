// What an upstream answer says about the call (model, tokens, finish reasons, error type), read from
// a whole JSON body or from each event of a stream, in the OpenAI and Anthropic shapes.

type Json = Record<string, unknown>;

const asObject = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const asCount = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.min(Math.floor(v), 0xffffffff) : 0);
const asText = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 256) : '');

export class ResponseUsage {
  model = '';
  inputTokens = 0;
  outputTokens = 0;
  readonly finishReasons = new Set<string>();
  errorType = '';

  /** One JSON answer, or one stream event's data. */
  read(value: unknown): void {
    const event = asObject(value);
    if (event === undefined) return;
    // Anthropic's stream wraps the message in message_start; the Responses API in response.*.
    const message = asObject(event.message) ?? asObject(event.response) ?? event;
    if (asText(message.model) !== '') this.model = asText(message.model);
    this.#usage(asObject(message.usage));
    if (message !== event) this.#usage(asObject(event.usage));
    for (const choice of Array.isArray(message.choices) ? message.choices : []) {
      const reason = asText(asObject(choice)?.finish_reason);
      if (reason !== '') this.finishReasons.add(reason);
    }
    const stop = asText(message.stop_reason) || asText(asObject(event.delta)?.stop_reason);
    if (stop !== '') this.finishReasons.add(stop);
    const error = asObject(event.error);
    if (error !== undefined) this.errorType = asText(error.code) || asText(error.type) || 'error';
  }

  #usage(usage: Json | undefined): void {
    if (usage === undefined) return;
    const input = asCount(usage.prompt_tokens) || asCount(usage.input_tokens);
    const output = asCount(usage.completion_tokens) || asCount(usage.output_tokens);
    // A stream reports input once and output as a running total: the largest figure is the call's.
    if (input > 0) this.inputTokens = Math.max(this.inputTokens, input);
    if (output > 0) this.outputTokens = Math.max(this.outputTokens, output);
  }
}

/**
 * Reads server-sent events as they pass: complete `data:` lines are parsed as JSON (the rest, and
 * `[DONE]`, ignored); a line split across chunks waits for its end.
 */
export class StreamReader {
  #pending = '';

  constructor(private readonly usage: ResponseUsage) {}

  push(chunk: Buffer): void {
    const text = this.#pending + chunk.toString('utf8');
    const lines = text.split('\n');
    this.#pending = lines.pop() ?? '';
    // An event larger than any real one is not worth holding.
    if (this.#pending.length > 1 << 20) this.#pending = '';
    for (const line of lines) this.#line(line);
  }

  end(): void {
    this.#line(this.#pending);
    this.#pending = '';
  }

  #line(line: string): void {
    if (!line.startsWith('data:')) return;
    const data = line.slice(5).trim();
    if (data === '' || data === '[DONE]') return;
    try {
      this.usage.read(JSON.parse(data));
    } catch {
      // not JSON: passed through untouched all the same
    }
  }
}
