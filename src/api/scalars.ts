import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

/** ISO-8601 instants: Date, epoch ms or an ISO string out; an ISO string (with a zone) in. */
export const DateTimeScalar = new GraphQLScalarType({
  name: 'DateTime',
  serialize(value) {
    const date = value instanceof Date ? value : new Date(value as string | number);
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime cannot represent an invalid date');
    return date.toISOString();
  },
  parseValue(value) {
    return parseDateTime(value);
  },
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return parseDateTime(ast.value);
  },
});

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function parseDateTime(value: unknown): Date {
  if (typeof value !== 'string' || !ISO_INSTANT.test(value)) throw new GraphQLError('DateTime must be an ISO-8601 string with a time zone, e.g. 2026-01-02T03:04:05Z');
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime is not a valid date');
  return date;
}

/** Opaque JSON, output only (audit details, policy overrides). */
export const JsonScalar = new GraphQLScalarType({
  name: 'JSON',
  serialize: (value) => (typeof value === 'string' ? safeParse(value) : value),
  parseValue: () => {
    throw new GraphQLError('JSON is an output type');
  },
  parseLiteral: () => {
    throw new GraphQLError('JSON is an output type');
  },
});

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Any JSON value as input; the schema the value must satisfy is checked by the resolver. */
export const JsonInputScalar = new GraphQLScalarType({
  name: 'JSONInput',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast) => literalValue(ast),
});

function literalValue(ast: import('graphql').ValueNode): unknown {
  switch (ast.kind) {
    case Kind.NULL:
      return null;
    case Kind.STRING:
    case Kind.ENUM:
      return ast.value;
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.LIST:
      return ast.values.map(literalValue);
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literalValue(f.value)]));
    default:
      throw new GraphQLError('JSONInput cannot use variables inside a literal; pass the whole value as a variable');
  }
}
