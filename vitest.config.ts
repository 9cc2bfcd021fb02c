import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Multi-process tests spawn their own children; keep the runner's own parallelism modest on 2 cores.
    maxWorkers: 2,
  },
});
