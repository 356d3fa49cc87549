import { runtimeEnvShape } from '@polyqueue/app-runtime';
import { intVariable, parseEnv } from '@polyqueue/core';
import { z } from 'zod';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The API's environment, parsed once at start; a bad value fails naming the variable. */
export const apiEnvSchema = z.object({
  ...runtimeEnvShape,
  PORT: intVariable(3000, 0, 65_535),
  /** Interface to listen on; unset listens on every interface (what a container needs). */
  HOST: z.string().trim().min(1).optional(),
  /** When set, the write endpoints and every admin route (reads too) require `Authorization: Bearer <API_TOKEN>`. */
  API_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Largest JSON request body. */
  JSON_MAX_BYTES: intVariable(100 * KiB, 1, 10 * MiB),
  /** Largest image upload (raw body or the multipart file). */
  IMAGE_MAX_BYTES: intVariable(20 * MiB, 1, 1024 * MiB),
  /**
   * On SIGTERM / SIGINT, requests in progress get this long to finish; then their connections
   * are closed and the process exits (as the workers' drain, but 10 s: a request is short).
   */
  DRAIN_TIMEOUT_MS: intVariable(10_000, 1),
  /** A JSON array of schedules (as POST /v1/schedules takes them) put into the store at start. */
  SCHEDULES_FILE: z.string().trim().min(1).optional(),
  /**
   * When set (http://prometheus:9090), GET /v1/queues/:q/history reads the dashboard's charts
   * from this Prometheus (query_range) instead of the state store's own per-minute history.
   */
  PROMETHEUS_URL: z.url({ protocol: /^https?$/ }).optional(),
});

export type ApiConfig = z.infer<typeof apiEnvSchema>;

export function loadApiConfig(env: Record<string, string | undefined>): ApiConfig {
  // An empty API_TOKEN= line in a .env file means "no token", not "a too-short token".
  return parseEnv(apiEnvSchema, {
    ...env,
    API_TOKEN: env.API_TOKEN || undefined,
    HOST: env.HOST || undefined,
    SCHEDULES_FILE: env.SCHEDULES_FILE || undefined,
    PROMETHEUS_URL: env.PROMETHEUS_URL || undefined,
  });
}
