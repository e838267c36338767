import type { Json } from './grafana-files.js';

// docker-compose.yml as the tests read it: published ports, variables taken from the host
// environment, bind mounts, and what docs/compose.md must say about them.

/**
 * Compose's interpolation of `text` with `env` (the compose-spec forms: $NAME, ${NAME}, ${NAME:-x},
 * ${NAME-x}, ${NAME:?msg}, ${NAME?msg}, ${NAME:+x}, ${NAME+x}, $$). Throws where compose would stop.
 */
export function interpolate(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced, op, arg, bare) => {
    if (whole === '$$') return '$';
    const name: string = braced ?? bare;
    const value = env[name];
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    switch (op as string | undefined) {
      case undefined:
        return value ?? '';
      case ':-':
        return nonEmpty ? value : arg;
      case '-':
        return set ? value : arg;
      case ':?':
      case '?':
        if (op === ':?' ? !nonEmpty : !set) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return value!;
      case ':+':
        return nonEmpty ? arg : '';
      default:
        return set ? arg : '';
    }
  });
}

/** The parsed file with every string interpolated, as compose does it (after parsing the YAML). */
export function interpolateValues(node: Json, env: Readonly<Record<string, string>>): Json {
  if (typeof node === 'string') return interpolate(node, env);
  if (Array.isArray(node)) return node.map((v) => interpolateValues(v, env));
  if (node !== null && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateValues(v, env)]));
  return node;
}

/** A short-syntax port mapping, "[host:]published:target". */
export function portBinding(mapping: string): { host: string; published: number; target: number } {
  const parts = mapping.split(':');
  const target = Number(parts.pop());
  const published = Number(parts.pop() ?? target);
  return { host: parts.join(':') || '0.0.0.0', published, target };
}

/** Host ports published by a service ("127.0.0.1:8123:8123" -> 8123), as with nothing exported. */
export function publishedPorts(service: Json): number[] {
  return (service.ports ?? []).map((p: string | { published: number | string }) => {
    if (typeof p === 'object') return Number(p.published);
    return portBinding(interpolate(String(p), {})).published;
  });
}

/** The exec form of the Dockerfile's CMD. */
export function dockerfileCmd(dockerfile: string): string[] {
  const match = /^CMD (\[.*\])$/m.exec(dockerfile);
  if (!match) throw new Error('the Dockerfile has no exec-form CMD');
  return JSON.parse(match[1]!) as string[];
}

/** Variables compose reads from the host environment: ${NAME}, ${NAME:-default}, ${NAME:?message}. */
export function hostVariables(composeText: string): string[] {
  return [...new Set([...composeText.matchAll(/\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}/g)].map((m) => m[1]!))].sort();
}

/** Bind-mount sources (relative paths in the repository) of a service. */
export function bindMounts(service: Json): string[] {
  return (service.volumes ?? [])
    .map((v: string | { type: string; source: string }) => (typeof v === 'object' ? (v.type === 'bind' ? v.source : '') : String(v).split(':')[0]!))
    .filter((source: string) => source.startsWith('./') || source.startsWith('../'));
}

/** What docs/compose.md fails to say about the compose file. */
export function composeDocProblems(doc: string, compose: Json, composeText: string, configurationDoc: string): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries<Json>(compose.services)) {
    for (const port of publishedPorts(service)) {
      if (!doc.includes(`\`${port}\``)) problems.push(`port ${port} (${name}) is not in docs/compose.md`);
    }
    if (service.image && !doc.includes(service.image) && !service.build) problems.push(`image ${service.image} is not named in docs/compose.md`);
  }
  for (const variable of hostVariables(composeText)) {
    if (!doc.includes(`\`${variable}\``)) problems.push(`${variable} is read by docker-compose.yml but not in docs/compose.md`);
  }
  // what Breakwater itself is given: each setting documented there or in the configuration reference
  for (const variable of Object.keys(compose.services.breakwater?.environment ?? {})) {
    if (!doc.includes(`\`${variable}\``) && !configurationDoc.includes(`\`${variable}\``)) {
      problems.push(`${variable} (breakwater's environment) is in neither docs/compose.md nor docs/configuration.md`);
    }
  }
  return problems;
}
