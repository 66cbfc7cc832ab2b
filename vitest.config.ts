import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // A missing prerequisite must fail the run, never skip it.
    allowOnly: false,
    passWithNoTests: false,
  },
});
