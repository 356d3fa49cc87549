/**
 * Rate and concurrency limits (QueueLimits) in Redis (STATE_URL=redis://...):
 *
 *   polyqueue:queue-limits               hash, queue -> its limits as JSON (one HGETALL a poll)
 *   polyqueue:limit-bucket:<queue>       hash {tokens, updatedAt}: the token bucket
 *   polyqueue:limit-slots:<queue>        sorted set, holder -> lease end: jobs running
 *   polyqueue:limit-slot-keys:<queue>    hash, holder -> job key: for per-key concurrency
 *
 * On a Redis Cluster (REDIS_CLUSTER_NODES) each name starts with {polyqueue:jobs} instead,
 * beside the job records under the state store's hash tag, so one script reaches them all.
 * An admission is one Lua script (lua/admit-limited-4.lua) on the server's clock. Its own
 * connection beside the state store's, as for the pause flags.
 */
import {
  type Admission,
  type AdmissionRequest,
  assertLimits,
  type Limits,
  limitsOrNone,
  type QueueLimits,
  SLOT_RETRY_MS,
  silentLogger,
} from '@polyqueue/core';
import { connect, connected, disconnect, type RedisClient } from './connection';
import { runScript } from './scripts';

export interface RedisQueueLimitsOptions {
  /** Key prefix (default polyqueue), as for the state store. */
  prefix?: string;
  /** REDIS_CLUSTER_NODES: use this Redis Cluster; the URL lends it user, password and TLS. */
  clusterNodes?: readonly string[];
}

export async function createRedisQueueLimits(
  url: string,
  options: RedisQueueLimitsOptions = {},
): Promise<QueueLimits> {
  const target = { url, ...(options.clusterNodes?.length ? { clusterNodes: options.clusterNodes } : {}) };
  const redis = connect(target, silentLogger(), 'queue-limits');
  await connected(redis, target);
  const prefix = options.prefix ?? 'polyqueue';
  return new RedisQueueLimits(redis, target.clusterNodes ? `{${prefix}:jobs}` : prefix);
}

class RedisQueueLimits implements QueueLimits {
  readonly #limitsKey: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly base: string,
  ) {
    this.#limitsKey = `${base}:queue-limits`;
  }

  #bucket(queue: string): string {
    return `${this.base}:limit-bucket:${queue}`;
  }

  #slots(queue: string): string {
    return `${this.base}:limit-slots:${queue}`;
  }

  #slotKeys(queue: string): string {
    return `${this.base}:limit-slot-keys:${queue}`;
  }

  async limits(): Promise<ReadonlyMap<string, Limits>> {
    const all = await this.redis.hgetall(this.#limitsKey);
    return new Map(Object.entries(all).map(([queue, json]) => [queue, JSON.parse(json) as Limits]));
  }

  async setLimits(queue: string, limits: Limits): Promise<void> {
    assertLimits(queue, limits);
    const kept = limitsOrNone(limits);
    // A change of limits keeps the bucket's tokens: no burst for having changed the rate.
    if (kept) await this.redis.hset(this.#limitsKey, queue, JSON.stringify(kept));
    else await this.redis.multi().hdel(this.#limitsKey, queue).del(this.#bucket(queue)).exec();
  }

  async admit(queue: string, request: AdmissionRequest): Promise<Admission> {
    const [granted, value] = (await runScript(
      this.redis,
      'admit-limited',
      [this.#limitsKey, this.#bucket(queue), this.#slots(queue), this.#slotKeys(queue)],
      [queue, request.holder, request.key ?? '', Math.ceil(request.leaseMs), SLOT_RETRY_MS],
    )) as [number, number];
    return granted === 1 ? { granted: true, slot: value === 1 } : { granted: false, retryInMs: value };
  }

  async renew(queue: string, holders: readonly string[], leaseMs: number): Promise<void> {
    if (holders.length === 0) return;
    await runScript(this.redis, 'renew-limited', [this.#slots(queue)], [Math.ceil(leaseMs), ...holders]);
  }

  async release(queue: string, holder: string): Promise<void> {
    await this.redis.multi().zrem(this.#slots(queue), holder).hdel(this.#slotKeys(queue), holder).exec();
  }

  close(): Promise<void> {
    return disconnect(this.redis);
  }
}
