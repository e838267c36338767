// YAML text to a plain value plus a way back from a key path to its line and column, so that a
// problem zod finds in the value can name the line it came from. Hostile text is bounded here:
// duplicate keys, several documents, unknown tags and alias bombs are errors, never surprises.

import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Document,
  type Pair,
  type YAMLError,
  type YAMLMap,
} from 'yaml';
import { formatKeyPath, MAX_REPORTED_ISSUES, PolicyError, type PolicyIssue } from './policy-error.js';
import type { Locate } from './resolve-policy.js';

/** Aliases expanded while building the value; a policy needs a handful, a "billion laughs" file needs millions. */
export const MAX_ALIAS_COUNT = 100;

export interface YamlSource {
  /** the document as plain data; null when the text holds no document */
  value: unknown;
  locate: Locate;
}

/** Parses one YAML document; throws PolicyError naming file:line:column for any YAML problem. */
export function readYaml(text: string, fileName: string): YamlSource {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, {
    lineCounter,
    prettyErrors: false, // positions come from lineCounter; the message stays one line
    // Duplicate keys are errors, but found below: yaml's own check compares every pair of keys in a
    // map, and a 1 MiB file of short keys would then take minutes.
    uniqueKeys: false,
    merge: true, // `<<: *base` lets tiers share settings
    // warnings are reported as issues below, not printed; 'silent' would also drop some errors
    logLevel: 'error',
  });
  const position = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const locate: Locate = (path) => position(offsetOfPath(document, path));

  // Warnings count too: an unresolved tag (`!foo`) would otherwise become a string.
  const found = [
    ...[...document.errors, ...document.warnings].map((problem: YAMLError) => ({
      offset: problem.pos[0],
      message: STACK_OVERFLOW.test(problem.message) ? 'is nested too deeply' : problem.message,
    })),
    // a document that did not parse may be partial; its keys are checked once it parses
    ...(document.errors.length === 0 ? keyProblems(document, (offset) => position(offset).line) : []),
  ];
  // An exhausted stack leaves the rest of the parse in pieces (how many depends on the stack's
  // size): the nesting is the one problem to report.
  const tooDeep = found.find((p) => p.message === 'is nested too deeply');
  const problems = tooDeep === undefined ? found : [tooDeep];
  if (problems.length > 0) {
    // only the issues listed get a key path: finding one walks the document
    const listed = problems.sort((a, b) => a.offset - b.offset).slice(0, MAX_REPORTED_ISSUES);
    const issues = listed.map(
      ({ offset, message }): PolicyIssue => ({
        file: fileName,
        ...position(offset),
        path: pathAtOffset(document, offset),
        message,
      }),
    );
    throw new PolicyError(issues, problems.length - listed.length);
  }

  try {
    return { value: document.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), locate };
  } catch (error) {
    // yaml throws a ReferenceError when aliases expand past maxAliasCount
    const aliasBomb = error instanceof ReferenceError;
    throw new PolicyError([
      {
        file: fileName,
        ...position(aliasBomb ? (firstAliasOffset(document) ?? 0) : 0),
        path: '(top level)',
        message: aliasBomb
          ? `aliases expand to more than ${MAX_ALIAS_COUNT} nodes; refused as a resource exhaustion attack`
          : unreadableMessage(error),
      },
    ]);
  }
}

function unreadableMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return STACK_OVERFLOW.test(message) ? 'is nested too deeply' : `could not be read: ${message}`;
}

// yaml catches a stack exhausted by deep nesting and reports it as a parse error with this message
const STACK_OVERFLOW = /call stack/i;

type Node = unknown;

function resolveAlias(document: Document, node: Node): Node {
  return isAlias(node) ? node.resolve(document) : node;
}

// Pairs of each map by key, built on first lookup: locating thousands of issues in a map of
// thousands of keys must not scan the map once per issue.
const pairIndexes = new WeakMap<object, Map<string, Pair>>();

function pairIndex(map: YAMLMap): Map<string, Pair> {
  let index = pairIndexes.get(map);
  if (index === undefined) {
    index = new Map();
    for (const pair of map.items) {
      if (!isScalar(pair.key) || typeof pair.key.value === 'symbol') continue;
      const name = String(pair.key.value);
      if (!index.has(name)) index.set(name, pair);
    }
    pairIndexes.set(map, index);
  }
  return index;
}

/** The pair under `key` in a map, looking through `<<` merge keys as the value does. */
function findPair(document: Document, map: Node, key: string, depth = 0): Pair | undefined {
  if (!isMap(map) || depth > 10) return undefined;
  const own = pairIndex(map).get(key);
  if (own !== undefined) return own;
  for (const pair of map.items) {
    if (!isScalar(pair.key) || typeof pair.key.value !== 'symbol') continue; // only merge keys
    const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
    for (const source of sources) {
      const found = findPair(document, resolveAlias(document, source), key, depth + 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Where the deepest existing key of `path` starts; the document's start when not even the first exists. */
function offsetOfPath(document: Document, path: readonly PropertyKey[]): number {
  let node: Node = document.contents;
  let offset = rangeStart(node) ?? 0;
  for (const segment of path) {
    node = resolveAlias(document, node);
    if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      offset = rangeStart(node) ?? offset;
      continue;
    }
    const pair = findPair(document, node, String(segment));
    if (pair === undefined) break;
    offset = rangeStart(pair.key) ?? offset;
    node = pair.value;
  }
  return offset;
}

/** The key path of the innermost pair around `offset`, for errors YAML reports by position only. */
function pathAtOffset(document: Document, offset: number): string {
  const keys: string[] = [];
  let node: Node = document.contents;
  for (let depth = 0; depth < 16 && isMap(node); depth++) {
    const pair: Pair | undefined = node.items.find((item) => {
      const start = rangeStart(item.key);
      const end = rangeEnd(item.value) ?? rangeEnd(item.key);
      return start !== undefined && end !== undefined && start <= offset && offset <= end;
    });
    if (pair === undefined || !isScalar(pair.key)) break;
    keys.push(String(pair.key.value));
    node = pair.value;
  }
  return formatKeyPath(keys);
}

function firstAliasOffset(document: Document): number | undefined {
  let offset: number | undefined;
  visit(document, {
    Alias(_, alias) {
      offset = alias.range?.[0];
      return visit.BREAK;
    },
  });
  return offset;
}

/** Keys written twice in a map, keys that are not plain scalars, and `__proto__`. */
interface OffsetProblem {
  offset: number;
  message: string;
}

function keyProblems(document: Document, lineOf: (offset: number) => number): OffsetProblem[] {
  const problems: OffsetProblem[] = [];
  try {
    visitMaps(document, problems, lineOf);
  } catch (error) {
    // visit() recurses; a document nested deeper than the stack is refused as such
    problems.push({ offset: 0, message: unreadableMessage(error) });
  }
  return problems;
}

function visitMaps(document: Document, problems: OffsetProblem[], lineOf: (offset: number) => number): void {
  visit(document, {
    Map(_, map) {
      const firstOffsets = new Map<string, number>();
      for (const { key } of map.items) {
        const offset = rangeStart(key) ?? rangeStart(map) ?? 0;
        if (!isScalar(key)) {
          problems.push({ offset, message: 'a key must be a plain name, not a list or a mapping' });
          continue;
        }
        if (typeof key.value === 'symbol') continue; // `<<` merge keys may repeat
        const name = String(key.value);
        // zod skips `__proto__` in records without a word; here it is an error like any unknown key
        if (name === '__proto__') problems.push({ offset, message: 'is not an allowed key' });
        const first = firstOffsets.get(name);
        if (first === undefined) firstOffsets.set(name, offset);
        else problems.push({ offset, message: `duplicate key (first written on line ${lineOf(first)})` });
      }
    },
  });
}

function rangeStart(node: Node): number | undefined {
  return (node as { range?: [number, number, number] } | null | undefined)?.range?.[0];
}

function rangeEnd(node: Node): number | undefined {
  return (node as { range?: [number, number, number] } | null | undefined)?.range?.[2];
}
