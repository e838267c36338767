import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // chdb segfaults at exit inside worker_threads; forks keep it on a process main thread.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
