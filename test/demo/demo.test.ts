// `breakwater demo` end to end, as CI runs it: a child process from the TypeScript sources, its
// exit code and what it prints.

import { expect, it } from 'vitest';
import { collectOutput, runCli } from '../helpers/child-service.js';

it('halts exactly the runaway tenant, shows it live and exits 0 by itself in well under a minute', async () => {
  const started = Date.now();
  const { code, stdout, stderr } = await collectOutput(runCli(['demo']));
  const seconds = (Date.now() - started) / 1000;
  expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
  expect(seconds).toBeLessThan(50);

  // The live table, read through the GraphQL API, with every tenant and tier.
  expect(stdout).toMatch(/TENANT\s+TIER\s+TOKENS\/S 60s\s+TOOLS\/MIN/);
  for (const [tenant, tier] of [['acme', 'enterprise'], ['globex', 'pro'], ['initech', 'free'], ['umbrella', 'free']]) {
    expect(stdout).toMatch(new RegExp(`^ ${tenant}\\s+${tier}\\s+\\d+\\.\\d\\s+\\d+`, 'm'));
  }
  // The runaway, its halt with the reason, and the breaker state in the table.
  expect(stdout).toMatch(/initech\/ticket-bot: run ticket-bot-loop-[0-9a-f]{4} is stuck calling kb\.search in a loop/);
  expect(stdout).toMatch(/HALT initech run ticket-bot-loop-[0-9a-f]{4}: toolCallsPerMinute \d+ exceeded its threshold 30/);
  expect(stdout).toMatch(/^ initech .*OPEN\s+HALT run ticket-bot-loop-[0-9a-f]{4}: toolCallsPerMinute \d+ \/ 30/m);
  expect(stdout.match(/^HALT|\] HALT /gm)).toHaveLength(1);
  // Summary, verdict and the queries to try.
  expect(stdout).toMatch(/^ {2}initech\s+free .*HALTED: ticket-bot-loop-/m);
  for (const tenant of ['acme', 'globex', 'umbrella']) expect(stdout).toMatch(new RegExp(`^  ${tenant} .*not halted$`, 'm'));
  expect(stdout).toContain('RESULT: PASS - exactly initech was halted');
  expect(stdout).toContain('GraphQL queries to try');
  expect(stdout).toMatch(/subscription \{ decisions\(tenantId: "initech"\)/);
}, 90_000);

it('refuses unknown flags with usage and exit code 2', async () => {
  const { code, stderr } = await collectOutput(runCli(['demo', '--bogus']));
  expect(code).toBe(2);
  expect(stderr).toMatch(/unknown demo flag "--bogus"/);
  expect(stderr).toMatch(/--keep-running/);
});
