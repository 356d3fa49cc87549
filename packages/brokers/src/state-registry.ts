import { ConfigError, type StateStore } from '@polyqueue/core';

/**
 * STATE_URL -> the store for job status and idempotency claims, by URL scheme:
 * sqlite:<path> (default sqlite:./var/state.db), redis://..., mysql://... With redis://, a
 * REDIS_CLUSTER_NODES in `env` puts the store on that Redis Cluster (the URL lends its
 * user, password and TLS), as it does for the Redis brokers.
 */
export async function createStateStore(
  stateUrl: string,
  env: Record<string, string | undefined> = {},
): Promise<StateStore> {
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
      return (await import('@polyqueue/broker-sqlite')).createSqliteStateStore(
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
      return redis.createRedisStateStore(stateUrl, clusterNodes ? { clusterNodes } : {});
    }
    case 'mysql:':
      return (await import('@polyqueue/broker-mysql')).createMysqlStateStore(stateUrl);
    default:
      throw new ConfigError(
        `STATE_URL: unknown scheme "${url.protocol}"; valid: sqlite:, redis://, mysql://`,
      );
  }
}
