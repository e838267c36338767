// Breakwater's figures (bench/, README) are measured with a 64 MB young-generation semi-space (on
// the ingest path about a fifth off the main thread's time per span: fewer scavenges, each copying
// a request's worth of live spans) and without V8's memory reducer (whose GCs in a lull of traffic
// were followed by 40-65 ms pauses and GC storms when the traffic came back). Every way of starting
// the service must run with the flags the figures were measured with.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const FLAGS = '--max-semi-space-size=64 --no-memory-reducer';
const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('Node flags', () => {
  it.each(['start', 'breakwater', 'demo', 'bench', 'bench:profile', 'soak'])('npm run %s starts node with the GC flags', (name) => {
    expect(scripts[name]).toMatch(/(^|&& )node /);
    expect(scripts[name]).toContain(`node ${FLAGS} `);
  });

  it('the installed `breakwater` command and the image carry it too', () => {
    const shebang = readFileSync(join(ROOT, 'src/cli.ts'), 'utf8').split('\n')[0]!;
    expect(shebang).toBe(`#!/usr/bin/env -S node ${FLAGS}`);
    // `env -S` splits the line into node and its flags (GNU coreutils 8.30+, BSD, macOS)
    const execArgv = execFileSync('/usr/bin/env', ['-S', `node ${FLAGS}`, '-e', 'process.stdout.write(JSON.stringify(process.execArgv))'], { encoding: 'utf8' });
    expect((JSON.parse(execArgv) as string[]).slice(0, 2)).toEqual(FLAGS.split(' '));
    const cmdFlags = FLAGS.split(' ').map((flag) => `"${flag}"`).join(', ');
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toContain(`CMD ["node", ${cmdFlags}, "dist/cli.js"`);
  });
});
