import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // test/cluster starts a 3-broker Kafka of its own: `npm run test:cluster` (vitest.cluster.config.ts).
    exclude: [...configDefaults.exclude, 'test/cluster/**'],
    // One Kafka for every file, and the conformance file restarts it: one file at a time.
    fileParallelism: false,
    // A new topic and consumer group per test: the first join alone can take a few seconds.
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
