import { defineConfig } from 'vitest/config';

/** `npm run test:cluster`: the tests that start a 3-broker Kafka of their own (test/cluster). */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    fileParallelism: false,
    // The annotations (jobs lost, redeliveries, seconds) are the measurement: print them.
    reporters: ['verbose'],
    testTimeout: 420_000,
    hookTimeout: 300_000,
  },
});
