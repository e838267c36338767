// A test stand-in for a ClickHouse server: ClickHouse's HTTP interface, for exactly what
// @clickhouse/client sends, with every statement run by a real engine (a chdb Session).
// It runs as a child process (`node --import tsx <this file> <port> <dataDir> <user> <password>`):
// chdb binds one data directory per process and must run on a process main thread, and a child can
// be killed to simulate an outage. Tests use `startClickHouseHttpServer` and `stallClickHouse`.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export interface ClickHouseHttpServer {
  url: string;
  port: number;
  /** SIGTERM: the child closes its listener and its engine, then exits */
  stop(): Promise<void>;
  /** SIGKILL: an abrupt outage (connections refused from then on) */
  kill(): Promise<void>;
}

export interface ClickHouseHttpServerOptions {
  /** 0 or unset: any free port */
  port?: number;
  dataDir: string;
  user: string;
  password: string;
}

const THIS_FILE = fileURLToPath(import.meta.url);

/** Starts the stand-in in a child process and resolves once it listens. */
export function startClickHouseHttpServer(options: ClickHouseHttpServerOptions): Promise<ClickHouseHttpServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', THIS_FILE, String(options.port ?? 0), options.dataDir, options.user, options.password], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let stdout = '';
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`ClickHouse stand-in exited before listening (code ${code}, signal ${signal}): ${stderr}`));
    child.once('exit', onExit);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening (\d+)\n/.exec(stdout);
      if (!match) return;
      child.off('exit', onExit);
      child.stdout!.resume();
      const port = Number(match[1]);
      const signal = (sig: NodeJS.Signals) => async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill(sig);
        await exited;
      };
      resolve({ url: `http://127.0.0.1:${port}`, port, stop: signal('SIGTERM'), kill: signal('SIGKILL') });
    });
  });
}

/**
 * A ClickHouse that accepts connections and never answers, on `port`: what a client sees of a
 * stalled server. stop() closes the listener and destroys the sockets it holds.
 */
export async function stallClickHouse(port: number): Promise<{ stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The child process.

/** URL keys that are not settings. */
const NOT_SETTINGS = new Set(['query', 'database', 'query_id', 'session_id', 'role', 'user', 'password', 'default_format', 'compress', 'decompress']);
/** Settings only the HTTP layer knows (the embedded engine rejects them as unknown). */
const HTTP_ONLY_SETTINGS = new Set([
  'wait_end_of_query',
  'send_progress_in_http_headers',
  'http_response_buffer_size',
  'http_headers_progress_interval_ms',
  'http_send_progress_interval_ms',
  'enable_http_compression',
  'http_zlib_compression_level',
  'http_response_compression_method',
  'http_native_compression_disable_checksumming_on_decompress',
]);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface ChdbSession {
  queryAsync(query: string, opts?: { format?: string }): Promise<{ bytes(): Uint8Array; elapsed: number; rowsRead: number; bytesRead: number }>;
  queryBindAsync(query: string, params: object, opts?: { format?: string }): Promise<{ bytes(): Uint8Array; elapsed: number; rowsRead: number; bytesRead: number }>;
  close(): void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

async function runChild(port: number, dataDir: string, user: string, password: string): Promise<void> {
  const { Session } = (await import('chdb')) as unknown as { Session: new (path: string) => ChdbSession };
  const session = new Session(dataDir);
  const spool = mkdtempSync(join(tmpdir(), 'ch-standin-spool-'));
  // One statement at a time: each runs as `USE db; SET ...; statement`, so none sees another's database.
  let chain: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(run: () => Promise<T>): Promise<T> => {
    const next = chain.then(run, run);
    chain = next.catch(() => {});
    return next;
  };

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => answerError(res, err));
  });
  server.keepAliveTimeout = 10_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/ping' && (req.method === 'GET' || req.method === 'HEAD')) {
      await readBody(req);
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' }).end('Ok.\n');
      return;
    }
    if (url.pathname !== '/') throw new HttpError(404, 0, `There is no handle ${url.pathname}. (UNKNOWN_HANDLER)`);
    authenticate(req, url);
    let body = await readBody(req);
    if (/gzip/i.test(String(req.headers['content-encoding'] ?? ''))) body = gunzipSync(body);
    if (/multipart\/form-data/i.test(String(req.headers['content-type'] ?? ''))) {
      throw new HttpError(400, 1, 'the stand-in does not take multipart query parameters. (NOT_IMPLEMENTED)');
    }

    const database = url.searchParams.get('database') ?? 'default';
    if (!IDENTIFIER.test(database)) throw new HttpError(400, 81, `Database ${database} does not exist. (UNKNOWN_DATABASE)`);
    const format = url.searchParams.get('default_format') ?? 'TabSeparated';
    const queryParam = url.searchParams.get('query');
    const settings: string[] = [];
    const params: Record<string, unknown> = {};
    const rawParams = new Map<string, string>();
    for (const [key, value] of url.searchParams) {
      if (key.startsWith('param_')) rawParams.set(key.slice('param_'.length), value);
      else if (!NOT_SETTINGS.has(key) && !HTTP_ONLY_SETTINGS.has(key)) {
        if (!IDENTIFIER.test(key)) throw new HttpError(400, 115, `Unknown setting ${key}. (UNKNOWN_SETTING)`);
        settings.push(`SET ${key} = ${/^-?\d+(\.\d+)?$/.test(value) ? value : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`}`);
      }
    }

    let sql: string;
    let spoolFile: string | undefined;
    const insertFormat = queryParam === null ? null : /^\s*INSERT\b[\s\S]*\bFORMAT\s+(\w+)\s*$/i.exec(queryParam);
    if (queryParam !== null && insertFormat) {
      // The body is the data, in any format (Native is binary): the engine reads it from a file.
      spoolFile = join(spool, `${randomUUID()}.data`);
      writeFileSync(spoolFile, body);
      const head = queryParam.slice(0, insertFormat.index + insertFormat[0].search(/FORMAT\s+\w+\s*$/i));
      sql = `${head.trimEnd()} FROM INFILE '${spoolFile}' FORMAT ${insertFormat[1]}`;
    } else {
      sql = queryParam === null ? body.toString('utf8') : body.length > 0 ? `${queryParam}\n${body.toString('utf8')}` : queryParam;
    }
    if (sql.trim() === '') throw new HttpError(400, 62, 'Empty query. (SYNTAX_ERROR)');
    for (const [name, text] of rawParams) params[name] = paramValue(text, declaredType(sql, name));

    const statement = [`USE ${database}`, ...settings, sql.replace(/;\s*$/, '')].join('; ');
    try {
      const result = await exclusive(() =>
        rawParams.size > 0 ? session.queryBindAsync(statement, params, { format }) : session.queryAsync(statement, { format }),
      );
      const bytes = Buffer.from(result.bytes());
      const summary = {
        read_rows: String(result.rowsRead ?? 0),
        read_bytes: String(result.bytesRead ?? 0),
        written_rows: '0',
        written_bytes: '0',
        total_rows_to_read: '0',
        result_rows: '0',
        result_bytes: String(bytes.length),
        elapsed_ns: String(Math.round((result.elapsed ?? 0) * 1e9)),
      };
      res
        .writeHead(200, {
          'Content-Type': 'text/plain; charset=UTF-8',
          'X-ClickHouse-Summary': JSON.stringify(summary),
          'X-ClickHouse-Format': formatOf(sql) ?? format,
          'X-ClickHouse-Query-Id': url.searchParams.get('query_id') ?? randomUUID(),
          'X-ClickHouse-Timezone': 'UTC',
        })
        .end(bytes);
    } finally {
      if (spoolFile) rmSync(spoolFile, { force: true });
    }
  }

  function authenticate(req: IncomingMessage, url: URL): void {
    let givenUser = 'default';
    let givenPassword = '';
    const authorization = req.headers.authorization;
    if (typeof authorization === 'string' && authorization.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice('Basic '.length), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      givenUser = colon === -1 ? decoded : decoded.slice(0, colon);
      givenPassword = colon === -1 ? '' : decoded.slice(colon + 1);
    } else if (req.headers['x-clickhouse-user'] !== undefined) {
      givenUser = String(req.headers['x-clickhouse-user']);
      givenPassword = String(req.headers['x-clickhouse-key'] ?? '');
    } else if (url.searchParams.has('user')) {
      givenUser = url.searchParams.get('user')!;
      givenPassword = url.searchParams.get('password') ?? '';
    }
    if (givenUser !== user || givenPassword !== password) {
      throw new HttpError(
        401,
        516,
        `${givenUser}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)`,
      );
    }
  }

  function answerError(res: ServerResponse, err: unknown): void {
    let status = 500;
    let code = 1001;
    let text: string;
    if (err instanceof HttpError) {
      status = err.status;
      code = err.code;
      text = `Code: ${code}. DB::Exception: ${err.message}`;
    } else {
      const message = err instanceof Error ? err.message : String(err);
      const match = /Code: (\d+)\.[\s\S]*/.exec(message);
      if (match) {
        code = Number(match[1]);
        text = match[0];
      } else {
        text = `Code: ${code}. DB::Exception: ${message} (STD_EXCEPTION)`;
      }
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res
      .writeHead(status, { 'Content-Type': 'text/plain; charset=UTF-8', 'X-ClickHouse-Exception-Code': String(code) })
      .end(`${text.trimEnd()} (version 25.0.0.0 (chdb stand-in))\n`);
  }

  server.listen(port, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : port}\n`);
  });
  const shutdown = () => {
    server.close();
    server.closeAllConnections();
    void chain.finally(() => {
      session.close();
      rmSync(spool, { recursive: true, force: true });
      process.exit(0);
    });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function formatOf(sql: string): string | undefined {
  return /\bFORMAT\s+(\w+)\s*;?\s*$/i.exec(sql)?.[1];
}

/** The type a `{name:Type}` placeholder declares, if the statement has one. */
function declaredType(sql: string, name: string): string {
  const match = new RegExp(`\\{\\s*${name}\\s*:\\s*([^}]+?)\\s*\\}`).exec(sql);
  return match?.[1] ?? 'String';
}

/**
 * Turns a `param_*` value back into what chdb's binder takes. The client sends ClickHouse's text
 * form (see @clickhouse/client formatQueryParams): a top-level string is Escaped (`\t \n \r \' \\`),
 * null is `\N`, and arrays/maps/tuples use quoted literals. chdb's binder re-escapes a JS string
 * and serializes JS arrays and objects to the same literal forms, so strings are unescaped and
 * composite values parsed; numbers and dates go through as the text the engine parses.
 */
function paramValue(text: string, type: string): unknown {
  if (text === '\\N') return null;
  const inner = type.replace(/^(Nullable|LowCardinality)\((.*)\)$/, '$2').replace(/^(Nullable|LowCardinality)\((.*)\)$/, '$2');
  if (/^(String|FixedString\(\d+\)|Enum\w*\(.*\))$/.test(inner)) return unescapeText(text);
  if (/^(Array|Map)\(/.test(inner)) return new LiteralParser(text).parse();
  return text;
}

const ESCAPES: Record<string, string> = { t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', '0': '\0', a: '\x07', v: '\v', e: '\x1b' };

function unescapeText(text: string): string {
  return text.replace(/\\(.)/gs, (_, c: string) => ESCAPES[c] ?? c);
}

/** Parses `['a',NULL,1]` / `{'k':'v'}` literals (as formatQueryParams writes them) into JS values. */
class LiteralParser {
  #i = 0;
  constructor(private readonly text: string) {}

  parse(): unknown {
    const value = this.#value();
    if (this.#i !== this.text.length) throw new HttpError(400, 27, `cannot parse parameter value ${this.text}. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)`);
    return value;
  }

  #value(): unknown {
    const c = this.text[this.#i];
    if (c === '[') return this.#list(']');
    if (c === '{') {
      const entries = this.#list('}', true) as [unknown, unknown][];
      return Object.fromEntries(entries.map(([k, v]) => [String(k), v]));
    }
    if (c === "'") {
      let out = '';
      this.#i++;
      while (this.#i < this.text.length && this.text[this.#i] !== "'") {
        if (this.text[this.#i] === '\\') {
          const e = this.text[this.#i + 1]!;
          out += ESCAPES[e] ?? e;
          this.#i += 2;
        } else out += this.text[this.#i++];
      }
      this.#i++;
      return out;
    }
    const match = /^[^,\]}:]+/.exec(this.text.slice(this.#i))!;
    this.#i += match[0].length;
    const word = match[0].trim();
    if (word === 'NULL') return null;
    if (word === 'TRUE' || word === 'FALSE') return word === 'TRUE';
    return Number(word);
  }

  #list(close: string, pairs = false): unknown[] {
    this.#i++;
    const items: unknown[] = [];
    while (this.text[this.#i] !== close) {
      if (this.#i >= this.text.length) throw new HttpError(400, 27, `cannot parse parameter value ${this.text}. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)`);
      const key = this.#value();
      if (pairs) {
        this.#i++; // ':'
        items.push([key, this.#value()]);
      } else items.push(key);
      if (this.text[this.#i] === ',') this.#i++;
    }
    this.#i++;
    return items;
  }
}

if (process.argv[1] === THIS_FILE) {
  const [port, dataDir, user, password] = process.argv.slice(2);
  await runChild(Number(port), dataDir!, user ?? 'default', password ?? '');
}
