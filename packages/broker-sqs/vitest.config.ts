import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The conformance file restarts ElasticMQ (in memory: every queue vanishes); another file
    // running meanwhile would lose its queues. One file at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
