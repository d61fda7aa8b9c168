import { defineConfig } from 'vitest/config';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const pkg = (name: string) => fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url));
// A package's test launchers (`@volact/<pkg>/testing`), kept out of its main entry.
const testing = (name: string) => fileURLToPath(new URL(`./packages/${name}/src/testing.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources; the CLI e2e tests run the built binary.
    alias: {
      // The `/testing` subpaths come before their packages: an alias matches as a prefix.
      '@volact/core/testing': testing('core'),
      '@volact/authority/testing': testing('authority'),
      '@volact/kms-host/testing': testing('kms-host'),
      '@volact/directory/testing': testing('directory'),
      '@volact/client/testing': testing('client'),
      '@volact/console/testing': testing('console'),
      '@volact/core': pkg('core'),
      '@volact/authority': pkg('authority'),
      '@volact/kms-host': pkg('kms-host'),
      '@volact/directory': pkg('directory'),
      '@volact/planner': pkg('planner'),
      // Before '@volact/client': an alias matches as a prefix, and the subpath has its own entry.
      '@volact/client/agent': fileURLToPath(new URL('./packages/client/src/agent-entry.ts', import.meta.url)),
      '@volact/client': pkg('client'),
      '@volact/simulator': pkg('simulator'),
      '@volact/console': pkg('console'),
      '@volact/cli': pkg('cli'),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Timeouts catch hangs, never measure: two files run side by side on CI's two cores, so a
    // slow test can take twice its time alone.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two test files at a time even on two cores (vitest's default there is one): most of a
    // file's time is spent waiting on the servers and processes it starts.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
