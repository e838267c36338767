// Breakwater's figures (bench/, README) are measured with a 64 MB young-generation semi-space: on
// the ingest path that takes about a fifth off the main thread's time per span (fewer scavenges,
// each copying a request's worth of live spans). Every way of starting the service must run with
// the flag the figures were measured with.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const FLAG = '--max-semi-space-size=64';
const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('Node flags', () => {
  it.each(['start', 'breakwater', 'demo', 'bench', 'bench:profile', 'soak'])('npm run %s starts node with the young-generation size', (name) => {
    expect(scripts[name]).toMatch(/(^|&& )node /);
    expect(scripts[name]).toContain(`node ${FLAG} `);
  });

  it('the installed `breakwater` command and the image carry it too', () => {
    const shebang = readFileSync(join(ROOT, 'src/cli.ts'), 'utf8').split('\n')[0]!;
    expect(shebang).toBe(`#!/usr/bin/env -S node ${FLAG}`);
    // `env -S` splits the line into node and its flag (GNU coreutils 8.30+, BSD, macOS)
    const execArgv = execFileSync('/usr/bin/env', ['-S', `node ${FLAG}`, '-e', 'process.stdout.write(JSON.stringify(process.execArgv))'], { encoding: 'utf8' });
    expect((JSON.parse(execArgv) as string[])[0]).toBe(FLAG);
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toContain(`CMD ["node", "${FLAG}", "dist/cli.js"`);
  });
});
