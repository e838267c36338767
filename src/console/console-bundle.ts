import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The console's sources (console/ at the repository root). */
export const CONSOLE_SOURCES = join(here, '..', '..', 'console');
/** Where `npm run build` leaves the bundle; the compiled server reads it from there. */
export const CONSOLE_BUILD_DIR = join(here, '..', '..', 'dist', 'console-assets');

export interface ConsoleBundle {
  js: Buffer;
  css: Buffer;
  /** a digest of both, naming the files so that they can be cached for good */
  version: string;
}

/** Bundles console/main.js (Preact, htm, uPlot, graphql-sse) and its CSS with esbuild, in memory. */
export async function bundleConsole(): Promise<ConsoleBundle> {
  // esbuild is loaded only when a bundle is made, not with every start of the server.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [join(CONSOLE_SOURCES, 'main.js'), join(CONSOLE_SOURCES, 'console.css')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    write: false,
    outdir: 'out',
    logLevel: 'silent',
    legalComments: 'none',
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
  const css = result.outputFiles.find((f) => f.path.endsWith('.css'));
  if (!js || !css) throw new Error('the console bundle is missing its JavaScript or CSS');
  return withVersion(Buffer.from(js.contents), Buffer.from(css.contents));
}

function withVersion(js: Buffer, css: Buffer): ConsoleBundle {
  const version = createHash('sha256').update(js).update(css).digest('hex').slice(0, 12);
  return { js, css, version };
}

/** The built bundle when the server runs compiled and one was built, else a fresh one from the sources. */
export async function loadConsole(): Promise<ConsoleBundle> {
  const fromSources = import.meta.url.endsWith('.ts');
  const js = join(CONSOLE_BUILD_DIR, 'main.js');
  const css = join(CONSOLE_BUILD_DIR, 'console.css');
  if (!fromSources && existsSync(js) && existsSync(css)) return withVersion(readFileSync(js), readFileSync(css));
  return bundleConsole();
}

/** `npm run build`: writes the bundle next to the compiled server. */
export async function writeConsoleBuild(dir = CONSOLE_BUILD_DIR): Promise<ConsoleBundle> {
  const bundle = await bundleConsole();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.js'), bundle.js);
  writeFileSync(join(dir, 'console.css'), bundle.css);
  return bundle;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const bundle = await writeConsoleBuild();
  process.stdout.write(`console bundle: ${bundle.js.length} bytes of JavaScript, ${bundle.css.length} of CSS in ${CONSOLE_BUILD_DIR}\n`);
}
