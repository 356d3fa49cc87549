/**
 * redis-reliable, best raw loop: the reliable-queue pattern (LMOVE into a per-consumer
 * processing list, LREM once handled) as fast as ioredis allows.
 *
 *   enqueue  one variadic RPUSH with the whole batch of `batch` bodies, 16 in flight
 *   process  one Lua call doing up to 100 LMOVE main -> processing (BLMOVE on the blocking
 *            connection when the list is drained); every job of the batch handled at once;
 *            then one Lua call doing LREM processing 1 <body> for each job of the batch, in
 *            flight while the next fetch runs, one settle in flight. Lua rather than a
 *            pipeline: 2 commands per 100 jobs instead of 200, each of them atomic
 *
 * Why it stays correct: LMOVE is atomic, so a job is always in the main list or in this
 * consumer's processing list until its LREM, which comes after its handler resolved; a dead
 * consumer's processing list is pushed back by whoever sees its heartbeat (the consumers
 * ZSET score) expire, as the driver's recovery does. The processing list holds at most two
 * batches, so each LREM scans at most 200 entries. Left out against the driver: the per-job
 * lease (ZADD/HSET/SADD) that lets the driver requeue one overdue job without its consumer
 * dying.
 */
import { randomUUID } from 'node:crypto';
import { perSecond, type Rates } from '../measure';
import { batchLoop, bodyChunks, windowed } from './best-loops';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';
import { withConnections } from './redis-raw';

const READ_COUNT = 100;
const POP_MANY = `local out = {}
for i = 1, tonumber(ARGV[1]) do
  local body = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not body then break end
  out[i] = body
end
return out`;
const REMOVE_MANY = `for i = 1, #ARGV do redis.call('LREM', KEYS[1], 1, ARGV[i]) end
return #ARGV`;
const PUSHES_IN_FLIGHT = 16;

export function bestRedisReliable(options: BaselineOptions): Promise<Rates> {
  const consumerId = randomUUID();
  return withConnections(
    options,
    async (redis, blocking, keys) => {
      const chunks = bodyChunks(options.jobs, options.batch);
      const t0 = performance.now();
      await windowed(chunks, PUSHES_IN_FLIGHT, (bodies) => redis.rpush(keys.main, ...bodies));
      const enqueuePerSec = perSecond(options.jobs, t0);

      const processing = keys.processing(consumerId);
      redis.defineCommand('bestPopMany', { numberOfKeys: 2, lua: POP_MANY });
      redis.defineCommand('bestRemoveMany', { numberOfKeys: 1, lua: REMOVE_MANY });
      const scripts = redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>;
      const t1 = performance.now();
      await redis.zadd(keys.consumers, Date.now() + 30_000, consumerId); // the heartbeat
      await batchLoop(
        options.jobs,
        async () => {
          const bodies = (await scripts.bestPopMany!(keys.main, processing, READ_COUNT)) as string[];
          if (bodies.length > 0) return bodies;
          const body = await blocking.blmove(keys.main, processing, 'LEFT', 'RIGHT', 1);
          return body === null ? [] : [body];
        },
        (body) => rawHandler(JSON.parse(body)),
        async (bodies) => {
          await scripts.bestRemoveMany!(processing, ...bodies);
        },
      );
      return { enqueuePerSec, processPerSec: perSecond(options.jobs, t1) };
    },
    (keys) => [keys.processing(consumerId)],
  );
}
