import { workerEnvShape } from '@polyqueue/app-runtime';
import { intVariable, parseEnv } from '@polyqueue/core';
import { z } from 'zod';

/** The image worker's environment, parsed once at start. */
export const imageWorkerEnvSchema = z.object({
  ...workerEnvShape,
  WORKER_CONCURRENCY: intVariable(2, 1, 64),
  /** An image with more pixels than this (width x height) is dead-lettered before decoding. */
  IMAGE_LIMIT_INPUT_PIXELS: intVariable(100_000_000, 1),
  /** A source file larger than this is dead-lettered without being read. */
  IMAGE_MAX_INPUT_BYTES: intVariable(50 * 1024 * 1024, 1),
  /** One job's whole budget (decode + every variant); over it the job is dead-lettered. */
  IMAGE_JOB_TIMEOUT_MS: intVariable(30_000, 100),
  /** libvips threads per image (sharp.concurrency); 0 keeps sharp's default, one per core. */
  SHARP_CONCURRENCY: intVariable(0, 0, 64),
  /**
   * libuv's thread pool, where sharp runs each pipeline; it must be at least WORKER_CONCURRENCY
   * or images wait for a thread. Read by libuv at its first use, so main.ts sets it first thing
   * and `npm start` passes it in the environment.
   */
  UV_THREADPOOL_SIZE: intVariable(4, 1, 1024),
});

export type ImageWorkerConfig = z.infer<typeof imageWorkerEnvSchema>;

export function loadImageWorkerConfig(env: Record<string, string | undefined>): ImageWorkerConfig {
  return parseEnv(imageWorkerEnvSchema, env);
}
