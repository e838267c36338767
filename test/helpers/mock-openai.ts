// A small OpenAI chat completions server for the conformance suite: the real `openai` and `ai`
// clients talk to it over HTTP. What it answers is decided by the last user message, so an agent
// script steers it without any side channel:
//   - contains "rate-limit": a 429 with OpenAI's error body and rate-limit headers;
//   - contains "tools=N" and the request offers tools: tool_calls until the conversation holds N
//     tool results, then a text answer;
//   - anything else: a text answer.
// Every answer names the dated model OpenAI answers with and carries usage.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const MOCK_RESPONSE_MODEL = 'gpt-4o-mini-2024-07-18';
export const MOCK_INPUT_TOKENS = 120;
export const MOCK_OUTPUT_TOKENS = 30;
/** Tool names the mock asks for, in turn. */
export const MOCK_TOOLS = ['lookup_weather', 'search_docs'] as const;

export interface MockOpenAi {
  /** base URL for the clients, ending in /v1 */
  baseUrl: string;
  /** chat completion requests answered so far, by outcome */
  counts: { completions: number; toolCallAnswers: number; rateLimited: number };
  close(): Promise<void>;
}

interface ChatMessage {
  role: string;
  content?: unknown;
}

interface ChatRequest {
  model?: string;
  messages?: ChatMessage[];
  tools?: unknown[];
  stream?: boolean;
}

export async function startMockOpenAi(): Promise<MockOpenAi> {
  const counts = { completions: 0, toolCallAnswers: 0, rateLimited: 0 };
  const server = createServer((req, res) => {
    void answer(req, res, counts).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(error), type: 'server_error' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function answer(req: IncomingMessage, res: ServerResponse, counts: MockOpenAi['counts']): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error' } }));
    return;
  }
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequest;
  const messages = request.messages ?? [];
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  const prompt = textOf(lastUser?.content);
  if (prompt.includes('rate-limit')) {
    counts.rateLimited++;
    res.writeHead(429, {
      'content-type': 'application/json',
      'retry-after': '1',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-limit-requests': '500',
    });
    res.end(
      JSON.stringify({
        error: {
          message: `Rate limit reached for ${MOCK_RESPONSE_MODEL} on requests per min (RPM): Limit 500, Used 500, Requested 1.`,
          type: 'requests',
          param: null,
          code: 'rate_limit_exceeded',
        },
      }),
    );
    return;
  }
  counts.completions++;
  const wanted = Number(/tools=(\d+)/.exec(prompt)?.[1] ?? 0);
  const toolResults = messages.filter((m) => m.role === 'tool').length;
  const callTool = request.tools !== undefined && request.tools.length > 0 && toolResults < wanted;
  const name = MOCK_TOOLS[toolResults % MOCK_TOOLS.length]!;
  const message = callTool
    ? {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: `call_${toolResults + 1}`, type: 'function', function: { name, arguments: JSON.stringify({ query: `q${toolResults + 1}` }) } }],
      }
    : { role: 'assistant', content: `done after ${toolResults} tool calls` };
  if (callTool) counts.toolCallAnswers++;
  const finishReason = callTool ? 'tool_calls' : 'stop';
  const usage = { prompt_tokens: MOCK_INPUT_TOKENS, completion_tokens: MOCK_OUTPUT_TOKENS, total_tokens: MOCK_INPUT_TOKENS + MOCK_OUTPUT_TOKENS };
  const id = `chatcmpl-${counts.completions}`;
  const created = Math.floor(Date.now() / 1000);
  if (request.stream === true) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const delta = callTool ? { role: 'assistant', tool_calls: message.tool_calls!.map((call, index) => ({ index, ...call })) } : { role: 'assistant', content: message.content };
    const base = { id, object: 'chat.completion.chunk', created, model: MOCK_RESPONSE_MODEL };
    res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`);
    res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: finishReason }] })}\n\n`);
    res.write(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
    res.end('data: [DONE]\n\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'x-ratelimit-remaining-requests': '499', 'x-ratelimit-limit-requests': '500' });
  res.end(JSON.stringify({ id, object: 'chat.completion', created, model: MOCK_RESPONSE_MODEL, choices: [{ index: 0, message, finish_reason: finishReason }], usage }));
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part) => (typeof part === 'object' && part !== null && 'text' in part ? String(part.text) : '')).join(' ');
  return '';
}
