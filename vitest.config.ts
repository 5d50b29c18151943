import { defineConfig } from 'vitest/config';

// Two projects: unit (no privileges, no kernel state) and integration (root, real netns,
// real BPF, the real CNI chain through libcni). Integration files skip themselves, with a
// message, when not run as root.
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // Unit tests (fuzz and noise simulations are CPU-heavy) run before, not beside, the
          // timing-sensitive integration tests on this 2-core machine.
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          sequence: { groupOrder: 1 },
          // Tests share node-wide kernel state (bpffs pins, bridges): run files one at a time.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          env: { AFSTEER_REPO_ROOT: process.cwd() },
        },
      },
    ],
  },
});
