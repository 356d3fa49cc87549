/**
 * redis-streams, best raw loop: the fastest at-least-once consumer of a stream and a consumer
 * group that ioredis allows, to show what the driver's design leaves on the table.
 *
 *   enqueue  XADD * envelope per job, pipelined: one pipeline per batch of `batch` and 16
 *            pipelines in flight (no MULTI: each XADD is atomic on its own)
 *   process  XREADGROUP COUNT 100 (BLOCK only when the stream is drained) on the blocking
 *            connection; every job of the batch handled at once; then ONE XACK with all the
 *            batch's ids plus one XDEL with them (keeps the stream from growing, as the
 *            driver's settle does), pipelined on the command connection while the next
 *            XREADGROUP runs, one settle in flight
 *
 * Why it stays correct: an entry is XACKed only after its handler resolved, and until then it
 * sits in the group's pending entries list, so a consumer that dies leaves it to XAUTOCLAIM
 * (the driver's recovery) exactly as one job per settle would. What it gives up against the
 * driver: per-job settle outcomes (retry with delay, dead-lettering) are not issued here; a
 * batch settle carries only acks.
 */
import { randomUUID } from 'node:crypto';
import { CONSUMER_GROUP, entryBody } from '@polyqueue/broker-redis';
import { perSecond, type Rates } from '../measure';
import { batchLoop, bodyChunks, windowed } from './best-loops';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';
import { withConnections } from './redis-raw';

const READ_COUNT = 100;
const PIPELINES_IN_FLIGHT = 16;

export function bestRedisStreams(options: BaselineOptions): Promise<Rates> {
  return withConnections(options, async (redis, blocking, keys) => {
    const chunks = bodyChunks(options.jobs, options.batch);
    const t0 = performance.now();
    await windowed(chunks, PIPELINES_IN_FLIGHT, async (bodies) => {
      const pipeline = redis.pipeline();
      for (const body of bodies) pipeline.xadd(keys.main, '*', 'envelope', body);
      for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
    });
    const enqueuePerSec = perSecond(options.jobs, t0);

    const consumerId = randomUUID();
    const t1 = performance.now();
    await redis.xgroup('CREATE', keys.main, CONSUMER_GROUP, '0', 'MKSTREAM');
    await batchLoop(
      options.jobs,
      async () => {
        const reply = (await blocking.xreadgroup(
          'GROUP',
          CONSUMER_GROUP,
          consumerId,
          'COUNT',
          READ_COUNT,
          'BLOCK',
          1000,
          'STREAMS',
          keys.main,
          '>',
        )) as [string, [string, string[]][]][] | null;
        return reply ? reply.flatMap(([, entries]) => entries) : [];
      },
      ([, fields]) => rawHandler(JSON.parse(entryBody(fields))),
      async (entries) => {
        const ids = entries.map(([id]) => id);
        const results = await redis
          .pipeline()
          .xack(keys.main, CONSUMER_GROUP, ...ids)
          .xdel(keys.main, ...ids)
          .exec();
        for (const [error] of results ?? []) if (error) throw error;
      },
    );
    return { enqueuePerSec, processPerSec: perSecond(options.jobs, t1) };
  });
}
