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
    // tfjs's cpu backend prints a banner once per process ("Hi, looks like you are running TensorFlow.js
    // in Node.js ... install our node backend"): a third-party notice, not a finding; dropped. Every
    // other console line of a test is printed (expected warnings are captured by the tests).
    onConsoleLog: (log) => !log.includes('looks like you are running TensorFlow.js in Node.js'),
  },
});
