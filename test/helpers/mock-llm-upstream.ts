// A stand-in for the OpenAI and Anthropic APIs (the edge of the world): answers chat completions,
// responses, embeddings, models and messages, streamed or not, with usage and rate-limit headers,
// and records what reached it.

import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface UpstreamRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface MockUpstream {
  url: string;
  requests: UpstreamRequest[];
  /** the next answers' status (200 by default) */
  failWith(status: number | undefined): void;
  close(): Promise<void>;
}

export const STREAMED_WORDS = ['Hel', 'lo', ' from', ' the', ' mock'];

export async function startMockUpstream(): Promise<MockUpstream> {
  const requests: UpstreamRequest[] = [];
  let failure: number | undefined;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
      const path = (req.url ?? '/').split('?')[0]!;
      requests.push({ path, headers: req.headers, body });
      const model = String(body.model ?? '');
      res.setHeader('x-ratelimit-remaining-requests', '499');
      res.setHeader('x-ratelimit-remaining-tokens', '29000');
      res.setHeader('x-request-id', `req-${requests.length}`);
      if (failure !== undefined) {
        res.writeHead(failure, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `mock failure ${failure}`, type: failure === 429 ? 'requests' : 'server_error', code: failure === 429 ? 'rate_limit_exceeded' : null } }));
        return;
      }
      if (path === '/v1/models') return json(res, { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model' }] });
      if (path === '/v1/messages') {
        if (body.stream === true) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          const events: [string, unknown][] = [
            ['message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: `${model}-20250101`, content: [], stop_reason: null, usage: { input_tokens: 21, output_tokens: 1 } } }],
            ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
            ...STREAMED_WORDS.map((w): [string, unknown] => ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: w } }]),
            ['content_block_stop', { type: 'content_block_stop', index: 0 }],
            ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } }],
            ['message_stop', { type: 'message_stop' }],
          ];
          for (const [event, data] of events) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
          res.end();
          return;
        }
        return json(res, { id: 'msg_1', type: 'message', role: 'assistant', model: `${model}-20250101`, content: [{ type: 'text', text: 'hi' }], stop_reason: 'end_turn', usage: { input_tokens: 21, output_tokens: 9 } });
      }
      if (path === '/v1/embeddings') return json(res, { object: 'list', model, data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], usage: { prompt_tokens: 4, total_tokens: 4 } });
      if (body.stream === true) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (delta: Record<string, unknown>, finish: string | null, usage?: unknown) =>
          `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: `${model}-2024-07-18`, choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) })}\n\n`;
        for (const w of STREAMED_WORDS) res.write(chunk({ content: w }, null));
        res.write(chunk({}, 'stop'));
        const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
        if (includeUsage) res.write(chunk({}, null, { prompt_tokens: 30, completion_tokens: 5, total_tokens: 35 }));
        res.end('data: [DONE]\n\n');
        return;
      }
      const toolCall = Array.isArray(body.tools) && body.tools.length > 0;
      json(res, {
        id: `chatcmpl-${requests.length}`,
        object: 'chat.completion',
        created: 1,
        model: `${model}-2024-07-18`,
        choices: [{ index: 0, message: toolCall ? { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'search', arguments: '{}' } }] } : { role: 'assistant', content: 'hi' }, finish_reason: toolCall ? 'tool_calls' : 'stop' }],
        usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failWith: (status) => (failure = status),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function json(res: import('node:http').ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}
