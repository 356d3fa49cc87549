/**
 * Pause flags (QueueControls) in Redis (STATE_URL=redis://...): one set of the paused queue
 * names, read with one SMEMBERS per poll.
 *
 *   polyqueue:paused-queues               on one server
 *   {polyqueue:jobs}:paused-queues        on a Redis Cluster (REDIS_CLUSTER_NODES), beside the
 *                                         job records under the state store's hash tag
 *
 * Its own connection beside the state store's: a worker's poll never queues behind a claim.
 * The set has no TTL: a pause holds until someone resumes the queue.
 */
import { assertControlledQueueName, type QueueControls, silentLogger } from '@polyqueue/core';
import { connect, connected, disconnect, type RedisClient } from './connection';

export interface RedisQueueControlsOptions {
  /** Key prefix (default polyqueue), as for the state store. */
  prefix?: string;
  /** REDIS_CLUSTER_NODES: use this Redis Cluster; the URL lends it user, password and TLS. */
  clusterNodes?: readonly string[];
}

export async function createRedisQueueControls(
  url: string,
  options: RedisQueueControlsOptions = {},
): Promise<QueueControls> {
  const target = { url, ...(options.clusterNodes?.length ? { clusterNodes: options.clusterNodes } : {}) };
  const redis = connect(target, silentLogger(), 'queue-controls');
  await connected(redis, target);
  const prefix = options.prefix ?? 'polyqueue';
  const base = target.clusterNodes ? `{${prefix}:jobs}` : prefix;
  return new RedisQueueControls(redis, `${base}:paused-queues`);
}

class RedisQueueControls implements QueueControls {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
  ) {}

  async paused(): Promise<ReadonlySet<string>> {
    return new Set(await this.redis.smembers(this.key));
  }

  async pause(queue: string): Promise<boolean> {
    assertControlledQueueName(queue);
    return (await this.redis.sadd(this.key, queue)) === 1;
  }

  async resume(queue: string): Promise<boolean> {
    return (await this.redis.srem(this.key, queue)) === 1;
  }

  close(): Promise<void> {
    return disconnect(this.redis);
  }
}
