// Builds @breakwater/sdk from the SDK's sources in src/sdk: one ES module bundling the server's pure
// modules the local judge shares (so the rules stay one definition and the package needs nothing of
// the server at run time), plus type declarations. Fails when the bundle would import anything
// that is not one of the package's dependencies.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { builtinModules, createRequire } from 'node:module';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import { build } from 'esbuild';

const here = fileURLToPath(new URL('.', import.meta.url));
const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(`${here}package.json`, 'utf8'));

rmSync(`${here}dist`, { recursive: true, force: true });
const result = await build({
  entryPoints: [`${here}../../src/sdk/index.ts`],
  outfile: `${here}dist/index.js`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: `node${pkg.engines.node.replace(/^>=/, '').split('.')[0]}`,
  packages: 'external',
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  banner: { js: `// ${pkg.name} ${pkg.version}` },
});

/** Throws naming what `imports` holds beyond the package's dependencies and Node's built-ins. */
function onlyDependencies(imports, what) {
  const stray = [...new Set(imports)].filter((path) => !allowed.has(packageOf(path)));
  if (stray.length > 0) throw new Error(`${what} import packages that are not the SDK's dependencies: ${stray.join(', ')}`);
}

const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules]);
const packageOf = (path) => (path.startsWith('@') ? path.split('/').slice(0, 2).join('/') : path.split('/')[0]).replace(/^node:/, '');
onlyDependencies(
  Object.values(result.metafile.outputs).flatMap((output) => output.imports.filter((i) => i.external).map((i) => i.path)),
  'the bundle would',
);

// tsc declares every module the SDK's sources reach; keep those the public types reach, so the
// package carries no declarations of server modules (and none of their dependencies, such as zod).
const types = `${here}dist/types`;
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', `${here}tsconfig.build.json`], { stdio: 'inherit' });
const reached = new Set();
const bare = [];
const todo = [join(types, 'sdk/index.d.ts')];
while (todo.length > 0) {
  const file = todo.pop();
  if (reached.has(file)) continue;
  reached.add(file);
  for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)) {
    if (spec.startsWith('.')) todo.push(normalize(join(dirname(file), spec.replace(/\.js$/, '.d.ts'))));
    else bare.push(spec);
  }
}
onlyDependencies(bare, 'the type declarations');
for (const entry of readdirSync(types, { recursive: true, withFileTypes: true })) {
  const file = join(entry.parentPath, entry.name);
  if (entry.isFile() && !reached.has(file)) rmSync(file);
}
for (const dir of readdirSync(types, { withFileTypes: true })) {
  if (dir.isDirectory() && ![...reached].some((file) => !relative(join(types, dir.name), file).startsWith('..'))) rmSync(join(types, dir.name), { recursive: true });
}
