import type { Json } from './grafana-files.js';

// docker-compose.yml as the tests read it: published ports, variables taken from the host
// environment, bind mounts, and what the README must say about them.

export const README_COMPOSE_HEADING = '## Run the full stack with Docker Compose';

/** Host ports published by a service ("127.0.0.1:8123:8123" -> 8123). */
export function publishedPorts(service: Json): number[] {
  return (service.ports ?? []).map((p: string | { published: number | string }) => {
    if (typeof p === 'object') return Number(p.published);
    const parts = String(p).split(':');
    return Number(parts.length >= 2 ? parts[parts.length - 2] : parts[0]);
  });
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

/** The README's compose section, or undefined. */
export function composeSection(readme: string): string | undefined {
  const start = readme.indexOf(README_COMPOSE_HEADING);
  if (start === -1) return undefined;
  const next = readme.indexOf('\n## ', start + README_COMPOSE_HEADING.length);
  return readme.slice(start, next === -1 ? undefined : next);
}

/** What the README's compose section fails to say about the compose file. */
export function composeReadmeProblems(readme: string, compose: Json, composeText: string, configurationDoc: string): string[] {
  const section = composeSection(readme);
  if (section === undefined) return [`README.md has no "${README_COMPOSE_HEADING}" section`];
  const problems: string[] = [];
  for (const [name, service] of Object.entries<Json>(compose.services)) {
    for (const port of publishedPorts(service)) {
      if (!section.includes(`\`${port}\``)) problems.push(`port ${port} (${name}) is not in the README's compose section`);
    }
    if (service.image && !section.includes(service.image) && !service.build) problems.push(`image ${service.image} is not named in the README`);
  }
  for (const variable of hostVariables(composeText)) {
    if (!section.includes(`\`${variable}\``)) problems.push(`${variable} is read by docker-compose.yml but not in the README's compose section`);
  }
  // what Breakwater itself is given: each setting documented in the README or the configuration reference
  for (const variable of Object.keys(compose.services.breakwater?.environment ?? {})) {
    if (!readme.includes(`\`${variable}\``) && !configurationDoc.includes(`\`${variable}\``)) {
      problems.push(`${variable} (breakwater's environment) is in neither the README nor docs/configuration.md`);
    }
  }
  return problems;
}
