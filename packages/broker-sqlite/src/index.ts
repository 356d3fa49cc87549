import { defineDriver, intVariable } from '@polyqueue/core';
import { z } from 'zod';
import { SqliteBroker } from './sqlite-broker';

export { claimSql, queueTableSql } from './schema';
export { SqliteBroker } from './sqlite-broker';
export { createSqliteMetricsHistory, SqliteMetricsHistory } from './sqlite-metrics-history';
export { createSqliteQueueControls, SqliteQueueControls } from './sqlite-queue-controls';
export { createSqliteQueueLimits, SqliteQueueLimits } from './sqlite-queue-limits';
export { createSqliteScheduleStore, SqliteScheduleStore } from './sqlite-schedule-store';
export { createSqliteStateStore, SqliteStateStore } from './sqlite-state-store';
export { createSqliteWorkerRegistry, SqliteWorkerRegistry } from './sqlite-worker-registry';

export const drivers = {
  sqlite: defineDriver({
    description: 'embedded table queue in one SQLite file; leases, delays, priority; at-least-once',
    envSchema: z.object({
      SQLITE_PATH: z.string().min(1).default('./var/polyqueue.db'),
      SQLITE_LEASE_MS: intVariable(30_000, 100),
      SQLITE_POLL_MIN_MS: intVariable(5, 1),
      SQLITE_POLL_MAX_MS: intVariable(200, 1),
      SQLITE_SYNCHRONOUS: z.enum(['NORMAL', 'FULL']).default('FULL'),
      POLYQUEUE_PREFIX: z
        .string()
        .regex(/^[A-Za-z0-9_]+$/, 'letters, digits and _ only')
        .default('polyqueue'),
    }),
    createBroker: async (c, { logger }) =>
      new SqliteBroker({
        path: c.SQLITE_PATH,
        prefix: c.POLYQUEUE_PREFIX,
        leaseMs: c.SQLITE_LEASE_MS,
        pollMinMs: c.SQLITE_POLL_MIN_MS,
        pollMaxMs: Math.max(c.SQLITE_POLL_MIN_MS, c.SQLITE_POLL_MAX_MS),
        synchronous: c.SQLITE_SYNCHRONOUS,
        logger,
      }),
  }),
};
