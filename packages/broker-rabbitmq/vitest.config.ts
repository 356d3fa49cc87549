import { configDefaults, defineConfig } from 'vitest/config';

// The test files share one RabbitMQ and some of them restart it or drop every connection:
// they must not overlap.
export default defineConfig({
  test: {
    fileParallelism: false,
    // test/cluster starts a 3-node RabbitMQ of its own: `npm run test:cluster` (vitest.cluster.config.ts).
    exclude: [...configDefaults.exclude, 'test/cluster/**'],
  },
});
