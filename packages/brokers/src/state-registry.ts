import { ConfigError, type StateStore } from '@polyqueue/core';

/**
 * STATE_URL -> the store for job status and idempotency claims, by URL scheme:
 * sqlite:<path> (default sqlite:./var/state.db), redis://..., mysql://...
 */
export async function createStateStore(stateUrl: string): Promise<StateStore> {
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
    case 'rediss:':
      return (await import('@polyqueue/broker-redis')).createRedisStateStore(stateUrl);
    case 'mysql:':
      return (await import('@polyqueue/broker-mysql')).createMysqlStateStore(stateUrl);
    default:
      throw new ConfigError(
        `STATE_URL: unknown scheme "${url.protocol}"; valid: sqlite:, redis://, mysql://`,
      );
  }
}
