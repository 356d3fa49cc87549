/**
 * Schedules (ScheduleStore) in Redis (STATE_URL=redis://...): one hash, schedule name -> its
 * definition as JSON, read with one HGETALL per scheduler pass.
 *
 *   polyqueue:schedules               on one server
 *   {polyqueue:jobs}:schedules        on a Redis Cluster (REDIS_CLUSTER_NODES), beside the job
 *                                     records under the state store's hash tag
 *
 * Its own connection beside the state store's, as for the pause flags.
 */
import { type Schedule, type ScheduleStore, silentLogger } from '@polyqueue/core';
import { connect, connected, disconnect, type RedisClient } from './connection';

export interface RedisScheduleStoreOptions {
  /** Key prefix (default polyqueue), as for the state store. */
  prefix?: string;
  /** REDIS_CLUSTER_NODES: use this Redis Cluster; the URL lends it user, password and TLS. */
  clusterNodes?: readonly string[];
}

export async function createRedisScheduleStore(
  url: string,
  options: RedisScheduleStoreOptions = {},
): Promise<ScheduleStore> {
  const target = { url, ...(options.clusterNodes?.length ? { clusterNodes: options.clusterNodes } : {}) };
  const redis = connect(target, silentLogger(), 'schedules');
  await connected(redis, target);
  const prefix = options.prefix ?? 'polyqueue';
  const base = target.clusterNodes ? `{${prefix}:jobs}` : prefix;
  return new RedisScheduleStore(redis, `${base}:schedules`);
}

class RedisScheduleStore implements ScheduleStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
  ) {}

  async list(): Promise<Schedule[]> {
    const all = await this.redis.hgetall(this.key);
    return Object.keys(all)
      .sort()
      .map((name) => JSON.parse(all[name] as string) as Schedule);
  }

  async put(schedule: Schedule): Promise<void> {
    await this.redis.hset(this.key, schedule.name, JSON.stringify(schedule));
  }

  async delete(name: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, name)) === 1;
  }

  close(): Promise<void> {
    return disconnect(this.redis);
  }
}
