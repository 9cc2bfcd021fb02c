import fs from 'node:fs';
import { defineConfig } from 'vitest/config';

const { version } = JSON.parse(fs.readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export default defineConfig({
  define: { __LOKI_VERSION__: JSON.stringify(version) },
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Multi-process tests spawn their own children; keep the runner's own parallelism modest on 2 cores.
    maxWorkers: 2,
  },
});
