/**
 * redis-list, best raw loop: the fastest list consumer ioredis allows for the driver's
 * guarantee, which is at-most-once (a BLPOPed job is gone from Redis; the driver's in-flight
 * lease only reports it).
 *
 *   enqueue  one variadic RPUSH with the whole batch of `batch` bodies, 16 in flight
 *   process  LPOP main 100 (Redis >= 6.2); when the list is empty, BLPOP on the blocking
 *            connection for one; every job of the batch handled at once
 *
 * Why it is no weaker than the driver: the driver also removes a job from the list before its
 * handler runs, so a crash loses the jobs taken (up to 100 here, up to `concurrency` there).
 * Nothing to settle: popping was the ack.
 */
import { perSecond, type Rates } from '../measure';
import { batchLoop, bodyChunks, windowed } from './best-loops';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';
import { withConnections } from './redis-raw';

const READ_COUNT = 100;
const PUSHES_IN_FLIGHT = 16;

export function bestRedisList(options: BaselineOptions): Promise<Rates> {
  return withConnections(options, async (redis, blocking, keys) => {
    const chunks = bodyChunks(options.jobs, options.batch);
    const t0 = performance.now();
    await windowed(chunks, PUSHES_IN_FLIGHT, (bodies) => redis.rpush(keys.main, ...bodies));
    const enqueuePerSec = perSecond(options.jobs, t0);

    const t1 = performance.now();
    await batchLoop(
      options.jobs,
      async () => {
        const bodies = await redis.lpop(keys.main, READ_COUNT);
        if (bodies && bodies.length > 0) return bodies;
        const reply = await blocking.blpop(keys.main, 1);
        return reply ? [reply[1]] : [];
      },
      (body) => rawHandler(JSON.parse(body)),
      async () => {},
    );
    return { enqueuePerSec, processPerSec: perSecond(options.jobs, t1) };
  });
}
