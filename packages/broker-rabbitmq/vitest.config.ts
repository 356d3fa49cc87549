import { defineConfig } from 'vitest/config';

// The test files share one RabbitMQ and some of them restart it or drop every connection:
// they must not overlap.
export default defineConfig({ test: { fileParallelism: false } });
