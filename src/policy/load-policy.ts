// breakwater.yaml from disk or text to a checked PolicyDocument. Every failure, whatever its cause
// (a missing explicit file, a syntax error, a typo, an alias bomb), is one PolicyError whose
// issues name the file, the line and the key path.

import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BUILTIN_TIERS } from './builtin-tiers.js';
import { PolicyError } from './policy-error.js';
import type { PolicyDocument } from './policy-types.js';
import { redactAuthSecrets } from './redact-auth.js';
import { buildPolicy } from './resolve-policy.js';
import { readYaml } from './yaml-source.js';

/** A policy is a few kilobytes; past this the file is refused before it is parsed. */
export const MAX_POLICY_BYTES = 1024 * 1024;

/** Read when no path is given; its absence means the built-in tiers, not an error. */
export const DEFAULT_POLICY_FILE = './breakwater.yaml';

let builtinDocument: PolicyDocument | undefined;

/** The policy of an empty file: the built-in tiers, no tenants, no prices. */
export function builtinPolicy(): PolicyDocument {
  builtinDocument ??= buildPolicy({}, { source: 'built-in defaults', baseTiers: BUILTIN_TIERS });
  return builtinDocument;
}

/** Parses and checks breakwater.yaml's text; `fileName` is what issues name. Throws PolicyError only. */
export function parsePolicy(text: string, fileName: string): PolicyDocument {
  // text.length is a lower bound of the UTF-8 size, and cheap on a huge string
  if (text.length > MAX_POLICY_BYTES || Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) {
    throw fileProblem(fileName, `is larger than ${MAX_POLICY_BYTES} bytes`);
  }
  try {
    const { value, locate } = readYaml(text, fileName);
    return buildPolicy(value, { source: fileName, locate, baseTiers: BUILTIN_TIERS });
  } catch (error) {
    // A bug, or a stack exhausted by pathological input: still the one error type callers handle.
    const problem =
      error instanceof PolicyError ? error : fileProblem(fileName, `could not be read: ${error instanceof Error ? error.message : String(error)}`);
    // every message may quote the text; none may quote a token of its auth section
    throw redactAuthSecrets(problem, text);
  }
}

export interface LoadPolicyOptions {
  /**
   * The path was named by the operator (flag or environment variable): a missing file is then an
   * error. Unset: explicit unless the path is DEFAULT_POLICY_FILE.
   */
  explicit?: boolean;
}

/** Reads and checks a policy file; the built-in policy when the default file does not exist. */
export async function loadPolicyFile(path: string, options: LoadPolicyOptions = {}): Promise<PolicyDocument> {
  const explicit = options.explicit ?? resolve(path) !== resolve(DEFAULT_POLICY_FILE);
  const text = await readPolicyText(path);
  if (text === undefined) {
    if (explicit) throw fileProblem(path, 'does not exist', 0);
    return builtinPolicy();
  }
  return parsePolicy(text, path);
}

/** The file's text, or undefined when it does not exist. Bounded by MAX_POLICY_BYTES. */
async function readPolicyText(path: string): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO given as the policy path must not hang the process waiting for a writer
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileProblem(path, `could not be opened: ${(error as Error).message}`, 0);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw fileProblem(path, 'is not a regular file', 0);
    if (stats.size > MAX_POLICY_BYTES) throw fileProblem(path, `is larger than ${MAX_POLICY_BYTES} bytes`);
    // read one byte past the limit: the file may have grown since stat
    const buffer = Buffer.alloc(MAX_POLICY_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) throw fileProblem(path, `is larger than ${MAX_POLICY_BYTES} bytes`);
    }
    return decodeUtf8(buffer.subarray(0, length), path);
  } catch (error) {
    if (error instanceof PolicyError) throw error;
    throw fileProblem(path, `could not be read: ${(error as Error).message}`);
  } finally {
    await handle.close();
  }
}

function decodeUtf8(bytes: Uint8Array, path: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fileProblem(path, 'is not UTF-8 text');
  }
}

/** line 0: the problem is the file itself (missing, unreadable), not a place in its text */
function fileProblem(file: string, message: string, line = 1): PolicyError {
  return new PolicyError([{ file, line, column: line === 0 ? 0 : 1, path: '(top level)', message }]);
}
