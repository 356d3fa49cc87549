import { ConfigError, type QueueControls } from '@polyqueue/core';

/**
 * STATE_URL -> the pause flags (QueueControls) in the same backend as the state store, by the
 * same URL schemes and REDIS_CLUSTER_NODES rule as createStateStore: sqlite:<path> (a table in
 * the state file), redis://... (one set), mysql://... (a table). A bad URL fails
 * with the ConfigError createStateStore gives.
 */
export async function createQueueControls(
  stateUrl: string,
  env: Record<string, string | undefined> = {},
): Promise<QueueControls> {
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
      return (await import('@polyqueue/broker-sqlite')).createSqliteQueueControls(
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
      return redis.createRedisQueueControls(stateUrl, clusterNodes ? { clusterNodes } : {});
    }
    case 'mysql:':
      return (await import('@polyqueue/broker-mysql')).createMysqlQueueControls(stateUrl);
    default:
      throw new ConfigError(
        `STATE_URL: unknown scheme "${url.protocol}"; valid: sqlite:, redis://, mysql://`,
      );
  }
}
