import { DEFAULT_LEASE_MS, intVariable } from '@polyqueue/core';
import { z } from 'zod';

/**
 * The variables every polyqueue process reads. BROKER and the driver's own variables
 * (REDIS_URL, SQLITE_PATH, ...) are read by @polyqueue/brokers from the same environment;
 * they are listed here only so one `parseEnv` call reports every bad variable at start.
 */
export const runtimeEnvShape = {
  BROKER: z.string().trim().min(1).default('sqlite'),
  /** Job status and idempotency records: sqlite:<path>, redis://..., mysql://... */
  STATE_URL: z.string().trim().min(1).default('sqlite:./var/state.db'),
  /** Uploaded images and their variants live under this directory. */
  STORAGE_ROOT: z.string().trim().min(1).default('./var/storage'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

export const runtimeEnvSchema = z.object(runtimeEnvShape);
export type RuntimeConfig = z.infer<typeof runtimeEnvSchema>;

/** What both workers add: how many jobs at once, how often to try, how long to drain. */
export const workerEnvShape = {
  ...runtimeEnvShape,
  WORKER_CONCURRENCY: intVariable(4, 1, 256),
  /** A job failing on this attempt is dead-lettered instead of retried. */
  MAX_ATTEMPTS: intVariable(5, 1, 100),
  BACKOFF_BASE_MS: intVariable(1_000, 1),
  BACKOFF_MAX_MS: intVariable(15 * 60_000, 1),
  /**
   * On brokers without a lease of their own (RabbitMQ, Kafka): how long a running job's
   * idempotency claim holds without a heartbeat, i.e. how soon a dead worker's job may run
   * again. Brokers with leases use theirs (SQLITE_LEASE_MS, REDIS_LEASE_MS, MYSQL_LEASE_MS,
   * SQS_VISIBILITY_TIMEOUT_S). The heartbeat renews it every third of it. RabbitMQ hands a dead
   * worker's jobs back at once, so this lease is what they wait for: 10 s, not the 30 s of the
   * leased brokers (chaos runs with 30 s saw those jobs back after 30.5 s).
   */
  JOB_LEASE_MS: intVariable(DEFAULT_LEASE_MS, 300, 24 * 3_600_000),
  /** On SIGTERM / SIGINT, in-flight jobs get this long to finish before their signal aborts. */
  DRAIN_TIMEOUT_MS: intVariable(30_000, 1),
  /** When set (not 0), the worker serves /metrics, /healthz and /readyz on this port. */
  METRICS_PORT: intVariable(0, 0, 65_535),
};

export const workerEnvSchema = z.object(workerEnvShape);
export type WorkerConfig = z.infer<typeof workerEnvSchema>;
