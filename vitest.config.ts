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
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
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
