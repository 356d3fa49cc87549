/**
 * Worker heartbeats (WorkerRegistry) in Redis (STATE_URL=redis://...): one hash, a field per
 * worker process holding its heartbeat as JSON.
 *
 *   polyqueue:workers               on one server
 *   {polyqueue:jobs}:workers        on a Redis Cluster, under the state store's hash tag
 *
 * Redis before 7.4 has no expiry per hash field, so it is emulated: a reader keeps only the
 * heartbeats younger than WORKER_EXPIRY_MS and deletes the fields of the older ones. The hash
 * itself expires when no worker has beaten for ten expiry periods.
 */
import {
  byQueueThenId,
  isLive,
  silentLogger,
  WORKER_EXPIRY_MS,
  type WorkerHeartbeat,
  type WorkerRegistry,
} from '@polyqueue/core';
import { connect, connected, disconnect, type RedisClient } from './connection';

export interface RedisWorkerRegistryOptions {
  /** Key prefix (default polyqueue), as for the state store. */
  prefix?: string;
  /** REDIS_CLUSTER_NODES: use this Redis Cluster; the URL lends it user, password and TLS. */
  clusterNodes?: readonly string[];
}

export async function createRedisWorkerRegistry(
  url: string,
  options: RedisWorkerRegistryOptions = {},
): Promise<WorkerRegistry> {
  const target = { url, ...(options.clusterNodes?.length ? { clusterNodes: options.clusterNodes } : {}) };
  const redis = connect(target, silentLogger(), 'worker-registry');
  await connected(redis, target);
  const prefix = options.prefix ?? 'polyqueue';
  const base = target.clusterNodes ? `{${prefix}:jobs}` : prefix;
  return new RedisWorkerRegistry(redis, `${base}:workers`);
}

class RedisWorkerRegistry implements WorkerRegistry {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
  ) {}

  async beat(heartbeat: WorkerHeartbeat): Promise<void> {
    await this.redis
      .multi()
      .hset(this.key, heartbeat.id, JSON.stringify(heartbeat))
      .pexpire(this.key, 10 * WORKER_EXPIRY_MS)
      .exec();
  }

  async live(now = Date.now()): Promise<WorkerHeartbeat[]> {
    const fields = await this.redis.hgetall(this.key);
    const live: WorkerHeartbeat[] = [];
    const expired: string[] = [];
    for (const [id, json] of Object.entries(fields)) {
      const heartbeat = JSON.parse(json) as WorkerHeartbeat;
      if (isLive(heartbeat, now)) live.push(heartbeat);
      else expired.push(id);
    }
    if (expired.length > 0) await this.redis.hdel(this.key, ...expired);
    return live.sort(byQueueThenId);
  }

  async remove(id: string): Promise<void> {
    await this.redis.hdel(this.key, id);
  }

  close(): Promise<void> {
    return disconnect(this.redis);
  }
}
