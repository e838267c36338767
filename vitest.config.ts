import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // chdb segfaults at exit inside worker_threads; forks keep it on a process main thread.
    pool: 'forks',
    // Most files wait on child processes, sockets and timers: vitest's default (cores - 1) leaves one of two cores idle.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
