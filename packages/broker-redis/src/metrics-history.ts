/**
 * Throughput and waiting time per queue and minute (MetricsHistory) in Redis
 * (STATE_URL=redis://...): per queue and hour, a hash of counts (field `<minute ms>:c` and
 * `<minute ms>:f`) and a sorted set of waits (member `<minute ms>`, score the wait in ms, raised
 * with ZADD GT, so several writers keep the greatest).
 *
 *   polyqueue:history:<queue>:<hour ms>          and  ...:<hour ms>:wait   on one server
 *   {polyqueue:jobs}:history:<queue>:<hour ms>   and  ...:<hour ms>:wait   on a Redis Cluster,
 *                                                under the state store's hash tag
 *
 * Both keys of an hour expire HISTORY_RETENTION_MS after the hour ends, so Redis prunes them
 * itself. A flush is one MULTI (HINCRBY, ZADD GT, PEXPIREAT per touched key); reading 24 hours
 * is one pipeline of 25 HGETALL + ZRANGE. Needs Redis 6.2 (ZADD GT).
 */
import { HISTORY_RETENTION_MS, type MetricsHistory, type MinuteSample, silentLogger } from '@polyqueue/core';
import { connect, connected, disconnect, type RedisClient } from './connection';

const HOUR_MS = 3_600_000;

export interface RedisMetricsHistoryOptions {
  /** Key prefix (default polyqueue), as for the state store. */
  prefix?: string;
  /** REDIS_CLUSTER_NODES: use this Redis Cluster; the URL lends it user, password and TLS. */
  clusterNodes?: readonly string[];
}

export async function createRedisMetricsHistory(
  url: string,
  options: RedisMetricsHistoryOptions = {},
): Promise<MetricsHistory> {
  const target = { url, ...(options.clusterNodes?.length ? { clusterNodes: options.clusterNodes } : {}) };
  const redis = connect(target, silentLogger(), 'metrics-history');
  await connected(redis, target);
  const prefix = options.prefix ?? 'polyqueue';
  const base = target.clusterNodes ? `{${prefix}:jobs}` : prefix;
  return new RedisMetricsHistory(redis, `${base}:history`);
}

class RedisMetricsHistory implements MetricsHistory {
  constructor(
    private readonly redis: RedisClient,
    private readonly base: string,
  ) {}

  #keys(queue: string, minute: number): { counts: string; waits: string; hour: number } {
    const hour = minute - (minute % HOUR_MS);
    const counts = `${this.base}:${queue}:${hour}`;
    return { counts, waits: `${counts}:wait`, hour };
  }

  async record(samples: readonly MinuteSample[]): Promise<void> {
    if (samples.length === 0) return;
    const multi = this.redis.multi();
    const expiries = new Map<string, number>();
    for (const s of samples) {
      const { counts, waits, hour } = this.#keys(s.queue, s.minute);
      const expireAt = hour + HOUR_MS + HISTORY_RETENTION_MS;
      if (s.completed > 0) multi.hincrby(counts, `${s.minute}:c`, s.completed);
      if (s.failed > 0) multi.hincrby(counts, `${s.minute}:f`, s.failed);
      if (s.completed > 0 || s.failed > 0) expiries.set(counts, expireAt);
      if (s.oldestWaitMs !== null) {
        multi.zadd(waits, 'GT', s.oldestWaitMs, String(s.minute));
        expiries.set(waits, expireAt);
      }
    }
    for (const [key, at] of expiries) multi.pexpireat(key, at);
    await multi.exec();
  }

  async read(queue: string, from: number, to: number): Promise<MinuteSample[]> {
    const pipeline = this.redis.pipeline();
    const first = this.#keys(queue, from).hour;
    for (let hour = first; hour < to; hour += HOUR_MS) {
      const { counts, waits } = this.#keys(queue, hour);
      pipeline.hgetall(counts);
      pipeline.zrange(waits, 0, -1, 'WITHSCORES');
    }
    const replies = (await pipeline.exec()) ?? [];
    const minutes = new Map<number, MinuteSample>();
    const at = (minute: number) => {
      let sample = minutes.get(minute);
      if (!sample) {
        sample = { queue, minute, completed: 0, failed: 0, oldestWaitMs: null };
        minutes.set(minute, sample);
      }
      return sample;
    };
    for (let i = 0; i < replies.length; i += 2) {
      const [countsError, counts] = replies[i]!;
      const [waitsError, waits] = replies[i + 1]!;
      if (countsError) throw countsError;
      if (waitsError) throw waitsError;
      for (const [field, value] of Object.entries(counts as Record<string, string>)) {
        const [minute, kind] = field.split(':');
        const sample = at(Number(minute));
        if (kind === 'c') sample.completed = Number(value);
        else sample.failed = Number(value);
      }
      const flat = waits as string[];
      for (let j = 0; j < flat.length; j += 2) at(Number(flat[j])).oldestWaitMs = Number(flat[j + 1]);
    }
    return [...minutes.values()]
      .filter((s) => s.minute >= from && s.minute < to)
      .sort((a, b) => a.minute - b.minute);
  }

  /** Keys expire on their own HISTORY_RETENTION_MS after their hour. */
  async prune(_before: number): Promise<void> {}

  close(): Promise<void> {
    return disconnect(this.redis);
  }
}
