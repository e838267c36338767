// Turns zod's issues into messages written for someone editing YAML: "must be a positive number,
// got -5", "unknown key (did you mean toolCallsPerMinute?)". One zod issue about several unknown
// keys becomes one problem per key, so each points at its own line.

import type { z } from 'zod';
import { closestName } from '../app/closest-name.js';

export interface KeyedProblem {
  /** the key path inside the validated value */
  path: PropertyKey[];
  message: string;
}

const EXPECTED_WORDS: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

/** `schema` is the one that produced the issues; it names the keys allowed where one was unknown. */
export function describeZodIssues(issues: readonly z.core.$ZodIssue[], schema: z.ZodType): KeyedProblem[] {
  return issues.flatMap((issue): KeyedProblem[] => {
    const path = [...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys':
        return issue.keys.map((key) => ({
          path: [...path, key],
          message: unknownKeyMessage(key, knownKeysAt(schema, path)),
        }));
      case 'invalid_key':
        return [{ path, message: `is not a valid name: ${issue.issues[0]?.message ?? issue.message}` }];
      case 'invalid_type':
        return [{ path, message: wrongTypeMessage(issue.expected, issue.input) }];
      default:
        return [{ path, message: issue.message }];
    }
  });
}

function wrongTypeMessage(expected: string, input: unknown): string {
  if (input === undefined) return 'is required';
  if (typeof input === 'number' && !Number.isFinite(input)) return `must be a finite number, got ${String(input)}`;
  return `must be ${EXPECTED_WORDS[expected] ?? expected}, got ${describeValue(input)}`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') {
    // YAML 1.1 tags the parser still knows (!!binary, !!timestamp, !!set) give class instances
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype === Object.prototype || prototype === null) return 'a mapping';
    return `a ${(value as { constructor?: { name?: string } }).constructor?.name ?? 'object'}`;
  }
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return `the string ${JSON.stringify(shown)}`;
  }
  return String(value);
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  if (known.length === 0) return 'unknown key';
  const closest = closestName(key, known);
  if (closest !== undefined) return `unknown key (did you mean ${closest}?)`;
  return `unknown key; expected one of: ${known.join(', ')}`;
}

// zod keeps a schema's structure in `_zod.def`; only the fields read here are described.
interface SchemaDefinition {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
}

function definitionOf(schema: z.ZodType): SchemaDefinition {
  return schema._zod.def as unknown as SchemaDefinition;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    const definition = definitionOf(current);
    const inner = definition.innerType ?? (definition.type === 'pipe' ? definition.in : undefined);
    if (inner === undefined) return current;
    current = inner;
  }
}

/** The keys an object schema allows at `path`, following records by their value schema. */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = schema;
  for (const segment of path) {
    const definition = definitionOf(unwrap(current));
    const shape = definition.shape ?? {};
    const key = String(segment);
    if (definition.type === 'object') current = Object.hasOwn(shape, key) ? shape[key] : undefined;
    else if (definition.type === 'record') current = definition.valueType;
    else return [];
    if (current === undefined) return [];
  }
  const definition = definitionOf(unwrap(current));
  return definition.type === 'object' ? Object.keys(definition.shape ?? {}) : [];
}
