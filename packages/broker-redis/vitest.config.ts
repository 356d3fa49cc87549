import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The conformance file restarts the Redis server once per driver; another file running
    // meanwhile would see its data vanish. One file at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
