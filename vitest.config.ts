import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // CI and the developers' machines have 2 cores; vitest's default (cores − 1) would run one file at a time.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
