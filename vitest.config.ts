import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Most test time is spent waiting on the sandbox, Azurite, PostgreSQL and child processes,
    // not on the CPU (about 45 % of two cores with one worker per core), so four workers finish
    // the suite sooner on the 2-core CI machines without starving the timing-sensitive tests.
    maxWorkers: 4,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // A missing prerequisite must fail the run, never skip it.
    allowOnly: false,
    passWithNoTests: false,
  },
});
