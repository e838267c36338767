import { describe, expect, it } from 'vitest';
import { collectOutput, runCli } from '../helpers/child-service.js';
import { tempDataDir } from '../helpers/service.js';

// What `docker compose up` shows when .env leaves the admin token empty: compose passes it on as an
// empty value (${BREAKWATER_ADMIN_TOKEN:-}) and Breakwater itself refuses, in one line naming it.

const serve = (env: NodeJS.ProcessEnv) =>
  collectOutput(
    runCli(['serve', '--config', 'deploy/breakwater/breakwater.yaml', '--host', '0.0.0.0', '--otlp-port', '0', '--graphql-port', '0', '--gateway-port', '0', '--data-dir', tempDataDir()], env),
  );

describe('breakwater serve with the compose policy file', () => {
  it('refuses an empty BREAKWATER_ADMIN_TOKEN with one line that names it and says what to do', async () => {
    const { code, stderr } = await serve({ BREAKWATER_ADMIN_TOKEN: '' });
    expect(code).toBe(2);
    expect(stderr).toBe('breakwater: auth.adminTokens[0]: environment variable BREAKWATER_ADMIN_TOKEN is empty: set it (16 characters or more) to start\n');
  });

  it('refuses a short one the same way', async () => {
    const { code, stderr } = await serve({ BREAKWATER_ADMIN_TOKEN: 'short' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^breakwater: auth\.adminTokens\[0\]: environment variable BREAKWATER_ADMIN_TOKEN holds fewer than 16 characters\n$/);
  });
});
