import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ChildService {
  process: ChildProcess;
  otlpUrl: string;
  graphqlUrl: string;
  /** every JSON log line so far */
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Runs the CLI from the TypeScript sources, as `npm run breakwater` does. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function collectOutput(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Starts `breakwater serve` in a child process on ephemeral ports and waits until it listens. */
export async function startChildService(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildService> {
  const child = runCli(['serve', '--otlp-port', '0', '--graphql-port', '0', '--gateway-port', '0', ...args], env);
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      if (signal) process.stderr.write(`breakwater child ended by ${signal}; stderr: ${stderr.slice(-2000)}\n`);
      resolve(code);
    }),
  );
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'breakwater listening') resolve(entry);
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`breakwater exited with ${code} before listening: ${stderr}`)));
  });
  const entry = await listening;
  const otlpUrl = String(entry.otlp).replace(/\/v1\/traces$/, '');
  const graphqlUrl = String(entry.graphql).replace(/\/graphql$/, '');
  return { process: child, otlpUrl, graphqlUrl, logs, exited };
}
