import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The conformance suite restarts the shared MariaDB; other files must not run meanwhile.
    fileParallelism: false,
  },
});
