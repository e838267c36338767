// Bench work that must not share the process under test (load generation, allocation-heavy floor
// inputs, memory measurement) runs as a child: a script of its own, started as the bench is (tsx),
// printing one JSON result.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** Runs `script` with `args` in a Node process of its own and parses the JSON it prints. */
export async function runChild<T>(script: string, args: readonly string[], nodeFlags: readonly string[] = []): Promise<T> {
  const { stdout } = await promisify(execFile)(process.execPath, [...nodeFlags, '--import', 'tsx', script, ...args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as T;
}

/** True in the process started with the module at `moduleUrl` (the child's entry), false where it is imported. */
export function isEntry(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && moduleUrl.endsWith(process.argv[1].split('/').pop()!);
}
