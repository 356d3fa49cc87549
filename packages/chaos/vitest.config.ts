import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Each file runs real processes against real servers and times what they do; the cluster
    // file fails a shared Redis Cluster master over: one file at a time.
    fileParallelism: false,
  },
});
