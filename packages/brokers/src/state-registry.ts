import {
  ConfigError,
  type MetricsHistory,
  type QueueControls,
  type QueueLimits,
  type ScheduleStore,
  type StateStore,
  type WorkerRegistry,
} from '@polyqueue/core';

/**
 * What STATE_URL opens, by URL scheme: sqlite:<path> (default sqlite:./var/state.db),
 * redis://..., mysql://... With redis://, a REDIS_CLUSTER_NODES in `env` puts it on that Redis
 * Cluster (the URL lends its user, password and TLS), as it does for the Redis brokers. The
 * state store and the pause flags share the URL, and so this one parse of it.
 */
interface StateBackends<T> {
  sqlite(driver: typeof import('@polyqueue/broker-sqlite'), path: string): T | Promise<T>;
  redis(
    driver: typeof import('@polyqueue/broker-redis'),
    url: string,
    options: { clusterNodes?: string[] },
  ): T | Promise<T>;
  mysql(driver: typeof import('@polyqueue/broker-mysql'), url: string): T | Promise<T>;
}

async function openByStateUrl<T>(
  stateUrl: string,
  env: Record<string, string | undefined>,
  open: StateBackends<T>,
): Promise<T> {
  let url: URL;
  try {
    url = new URL(stateUrl);
  } catch {
    throw new ConfigError(
      `STATE_URL: not a URL (got ${JSON.stringify(stateUrl)}); use sqlite:<path>, redis://... or mysql://...`,
    );
  }
  switch (url.protocol) {
    case 'sqlite:':
      return open.sqlite(
        await import('@polyqueue/broker-sqlite'),
        decodeURIComponent(stateUrl.slice('sqlite:'.length)),
      );
    case 'redis:':
    case 'rediss:': {
      const redis = await import('@polyqueue/broker-redis');
      let clusterNodes: string[] | undefined;
      try {
        clusterNodes = redis.parseClusterNodes(env.REDIS_CLUSTER_NODES);
      } catch (error) {
        throw new ConfigError((error as Error).message);
      }
      return open.redis(redis, stateUrl, clusterNodes ? { clusterNodes } : {});
    }
    case 'mysql:':
      return open.mysql(await import('@polyqueue/broker-mysql'), stateUrl);
    default:
      throw new ConfigError(
        `STATE_URL: unknown scheme "${url.protocol}"; valid: sqlite:, redis://, mysql://`,
      );
  }
}

/** STATE_URL -> the store for job status and idempotency claims. */
export function createStateStore(
  stateUrl: string,
  env: Record<string, string | undefined> = {},
): Promise<StateStore> {
  return openByStateUrl<StateStore>(stateUrl, env, {
    sqlite: (driver, path) => driver.createSqliteStateStore(path),
    redis: (driver, url, options) => driver.createRedisStateStore(url, options),
    mysql: (driver, url) => driver.createMysqlStateStore(url),
  });
}

/**
 * STATE_URL -> the pause flags (QueueControls) in the same backend as the state store: a table
 * in the sqlite state file, one Redis set, a MySQL table.
 */
export function createQueueControls(
  stateUrl: string,
  env: Record<string, string | undefined> = {},
): Promise<QueueControls> {
  return openByStateUrl<QueueControls>(stateUrl, env, {
    sqlite: (driver, path) => driver.createSqliteQueueControls(path),
    redis: (driver, url, options) => driver.createRedisQueueControls(url, options),
    mysql: (driver, url) => driver.createMysqlQueueControls(url),
  });
}

/**
 * STATE_URL -> the rate and concurrency limits (QueueLimits) in the same backend as the state
 * store: two tables in the sqlite state file, a Redis hash and a Lua script, two MySQL tables.
 */
export function createQueueLimits(
  stateUrl: string,
  env: Record<string, string | undefined> = {},
): Promise<QueueLimits> {
  return openByStateUrl<QueueLimits>(stateUrl, env, {
    sqlite: (driver, path) => driver.createSqliteQueueLimits(path),
    redis: (driver, url, options) => driver.createRedisQueueLimits(url, options),
    mysql: (driver, url) => driver.createMysqlQueueLimits(url),
  });
}

/** STATE_URL -> the worker heartbeats (GET /v1/workers) in the same backend as the state store. */
export function createWorkerRegistry(
  stateUrl: string,
  env: Record<string, string | undefined> = {},
): Promise<WorkerRegistry> {
  return openByStateUrl<WorkerRegistry>(stateUrl, env, {
    sqlite: (driver, path) => driver.createSqliteWorkerRegistry(path),
    redis: (driver, url, options) => driver.createRedisWorkerRegistry(url, options),
    mysql: (driver, url) => driver.createMysqlWorkerRegistry(url),
  });
}

/**
 * STATE_URL -> the schedules (ScheduleStore) in the same backend as the state store: a table
 * in the sqlite state file, one Redis hash, a MySQL table. Every API replica reads them there.
 */
export function createScheduleStore(
  stateUrl: string,
  env: Record<string, string | undefined> = {},
): Promise<ScheduleStore> {
  return openByStateUrl<ScheduleStore>(stateUrl, env, {
    sqlite: (driver, path) => driver.createSqliteScheduleStore(path),
    redis: (driver, url, options) => driver.createRedisScheduleStore(url, options),
    mysql: (driver, url) => driver.createMysqlScheduleStore(url),
  });
}

/**
 * STATE_URL -> the per-minute throughput and waiting time (MetricsHistory) in the same backend
 * as the state store: a table in the sqlite state file, Redis hashes per hour, a MySQL table.
 * Workers write it (batched); GET /v1/queues/:q/history reads it.
 */
export function createMetricsHistory(
  stateUrl: string,
  env: Record<string, string | undefined> = {},
): Promise<MetricsHistory> {
  return openByStateUrl<MetricsHistory>(stateUrl, env, {
    sqlite: (driver, path) => driver.createSqliteMetricsHistory(path),
    redis: (driver, url, options) => driver.createRedisMetricsHistory(url, options),
    mysql: (driver, url) => driver.createMysqlMetricsHistory(url),
  });
}
