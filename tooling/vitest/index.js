// Shared vitest settings. Integration tests talk to the real PostgreSQL and Redis; every file isolates
// itself (own schema, own key prefix), so files run in parallel, two at a time by default because the
// machines this runs on in CI have two cores. Override with VITEST_MAX_WORKERS.
import { defineConfig, mergeConfig } from 'vitest/config';

const maxWorkers = Number(process.env.VITEST_MAX_WORKERS ?? 2);

/** @param {import('vitest/config').ViteUserConfig} [overrides] */
export function defineCcatConfig(overrides = {}) {
  return mergeConfig(
    defineConfig({
      test: {
        globals: false,
        include: ['test/**/*.test.ts'],
        pool: 'forks',
        maxWorkers,
        testTimeout: 30_000,
        hookTimeout: 30_000,
        teardownTimeout: 10_000,
        // A test that needs a service it cannot reach fails with a message; nothing is skipped quietly.
        allowOnly: false,
        passWithNoTests: false,
      },
    }),
    overrides,
  );
}
