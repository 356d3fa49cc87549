/**
 * The Redis drivers' baselines: for each of redis-list, redis-reliable and redis-streams, a
 * hand-written ioredis loop issuing the same commands the driver issues per job, and nothing else
 * (no worker runtime, no Delivery objects, no validation, no idempotency claim).
 *
 * "The same commands" is literal: keys come from the driver's exported queueKeys(), and the Lua
 * scripts are the driver's own files (packages/broker-redis/src/lua), read from the installed
 * package and registered with defineCommand (EVALSHA) exactly as the driver registers them.
 *
 *   enqueue (all three)  one MULTI per batch of `batch` jobs: one variadic RPUSH (lists) or an
 *                        XADD * envelope <body> type <type> payload <json> per job (stream), as
 *                        publishBatch does
 *   redis-list           LPOP main/low COUNT <free slots> on the blocking connection, BLPOP main
 *                        low for one only when both are empty, then one in-flight ZADD of the
 *                        batch's tokens, not awaited; ack = ZREM of many tokens, one in flight
 *   redis-reliable       heartbeat ZADD once; fetch-reliable script (LMOVE + lease ZADD/HSET/SADD)
 *                        for up to the free slots; when empty, BLMOVE main -> processing on the
 *                        blocking connection + MULTI ZADD/HSET/SADD; acks = settle-reliable script
 *   redis-streams        XGROUP CREATE ... MKSTREAM; XREADGROUP COUNT <free slots> BLOCK on the
 *                        blocking connection; acks = settle-stream script (XACK + XDEL)
 *   acks (all three)     batched as the drivers' SettleBatcher does: one call in flight, with
 *                        every ack asked for while the last one was out
 *
 * Processing uses the driver's loop shape: keep `concurrency` handlers in flight, fetch for the
 * free slots as soon as there are any. Each job's body is JSON-parsed once (a hand-written worker
 * has to read its job) and given to an async no-op handler. A job counts as processed once its
 * ack has returned.
 *
 * Left out: the read-ahead of redis-streams and redis-reliable (the next fetch sent while a full
 * batch runs, read-ahead.ts). Left out on purpose: the drivers' timed maintenance (delayed-job promotion every REDIS_POLL_MS,
 * redis-reliable heartbeat/recovery and redis-streams XAUTOCLAIM every lease/4, redis-list
 * in-flight refresh). They run a few commands per second whatever the job rate, not per job.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CONSUMER_GROUP, entryBody, type QueueKeys, queueKeys } from '@polyqueue/broker-redis';
import { createEnvelope, type Envelope, encodeEnvelope } from '@polyqueue/core';
import { type ChainableCommander, Redis } from 'ioredis';
import { perSecond, type Rates } from '../measure';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';

/** The driver's defaults (packages/broker-redis/src/config.ts). */
const BLOCK_SECONDS = 1;
const LEASE_MS = 30_000;

// The driver's package resolves to its src/index.ts; its scripts sit next to it in ./lua/.
const luaDirectory = new URL('./lua/', import.meta.resolve('@polyqueue/broker-redis'));

/** Script name -> [ioredis command, number of keys], as scripts.ts derives them from file names. */
const SCRIPTS = {
  'fetch-reliable-6.lua': ['pq_fetch_reliable', 6],
  'settle-reliable-7.lua': ['pq_settle_reliable', 7],
  'settle-stream-3.lua': ['pq_settle_stream', 3],
} as const;

type ScriptCommand = (...args: (string | number)[]) => Promise<unknown>;

function connect(url: string, blocking = false): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: blocking ? null : 3, lazyConnect: false });
  for (const [file, [command, numberOfKeys]] of Object.entries(SCRIPTS)) {
    redis.defineCommand(command, {
      numberOfKeys,
      lua: readFileSync(new URL(file, luaDirectory), 'utf8'),
    });
  }
  return redis;
}

function script(redis: Redis, command: (typeof SCRIPTS)[keyof typeof SCRIPTS][0]): ScriptCommand {
  const fn = (redis as unknown as Record<string, ScriptCommand>)[command]!;
  return fn.bind(redis);
}

async function exec(multi: ChainableCommander): Promise<void> {
  const results = await multi.exec();
  if (!results) throw new Error('redis transaction aborted');
  for (const [error] of results) if (error) throw error;
}

/** Publishes `jobs` envelopes in MULTIs of `batch`, each batch's bodies added by `add`; returns jobs/s. */
async function enqueue(
  redis: Redis,
  options: BaselineOptions,
  add: (multi: ChainableCommander, bodies: string[], envelopes: Envelope[]) => void,
): Promise<number> {
  const envelopes = Array.from({ length: options.jobs }, (_, i) => createEnvelope('bench_job', { i }));
  const t0 = performance.now();
  for (let i = 0; i < envelopes.length; i += options.batch) {
    const multi = redis.multi();
    const batch = envelopes.slice(i, i + options.batch);
    add(multi, batch.map(encodeEnvelope), batch);
    await exec(multi);
  }
  return perSecond(options.jobs, t0);
}

/**
 * The driver's consume loop without its error handling: at most `concurrency` jobs in flight,
 * fetching for the free slots whenever there are some. Resolves once `jobs` jobs were handled.
 * A fetch still blocked on an empty queue at the end is left to the caller's disconnect.
 */
async function slotLoop<T>(
  jobs: number,
  concurrency: number,
  fetch: (max: number) => Promise<T[]>,
  handle: (item: T) => Promise<void>,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let done = 0;
  let allDone!: () => void;
  const finished = new Promise<null>((resolve) => {
    allDone = () => resolve(null);
  });
  while (done < jobs) {
    if (inFlight.size >= concurrency) {
      await Promise.race(inFlight);
      continue;
    }
    const fetching = fetch(concurrency - inFlight.size);
    fetching.catch(() => {}); // rejected by the final disconnect when still blocked
    const batch = await Promise.race([fetching, finished]);
    if (batch === null) break;
    for (const item of batch) {
      const running: Promise<void> = handle(item).then(() => {
        inFlight.delete(running);
        done += 1;
        if (done === jobs) allDone();
      });
      inFlight.add(running);
    }
  }
  await Promise.all(inFlight);
}

export async function withConnections(
  options: BaselineOptions,
  run: (redis: Redis, blocking: Redis, keys: QueueKeys) => Promise<Rates>,
  extraKeys: (keys: QueueKeys) => string[] = () => [],
): Promise<Rates> {
  const url = options.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = options.env.POLYQUEUE_PREFIX ?? 'polyqueue';
  const keys = queueKeys(prefix, `raw${Date.now().toString(36)}${randomUUID().slice(0, 4)}`);
  const redis = connect(url);
  const blocking = connect(url, true);
  try {
    await Promise.all([redis.ping(), blocking.ping()]);
    return await run(redis, blocking, keys);
  } finally {
    blocking.disconnect();
    await redis
      .del(
        keys.main,
        keys.low,
        keys.delayed,
        keys.dead,
        keys.leases,
        keys.leased,
        keys.consumers,
        ...extraKeys(keys),
      )
      .catch(() => 0);
    await redis.quit().catch(() => redis.disconnect());
  }
}

/**
 * redis-list, as the driver's plainConsumer (list-consumers.ts): variadic RPUSH; a fetch takes
 * what is waiting for the free slots with LPOP main/low COUNT, BLPOPs one only when nothing is,
 * and records the popped jobs as in flight with one ZADD it does not wait for; acks are ZREMs of
 * many tokens, one in flight, the ones asked for meanwhile going out together next.
 */
export function rawRedisList(options: BaselineOptions): Promise<Rates> {
  return withConnections(options, async (redis, blocking, keys) => {
    // One variadic RPUSH per batch, as the driver's publish (publish.ts).
    const enqueuePerSec = await enqueue(redis, options, (multi, bodies) => multi.rpush(keys.main, ...bodies));

    const consumerId = randomUUID();
    let sequence = 0;
    const acks = oneInFlight((tokens: string[]) => redis.zrem(keys.leases, ...tokens));
    const t1 = performance.now();
    await slotLoop(
      options.jobs,
      options.concurrency,
      async (max) => {
        let bodies = max > 1 ? ((await blocking.lpop(keys.main, max)) ?? []) : [];
        if (max > 1 && bodies.length < max)
          bodies.push(...((await blocking.lpop(keys.low, max - bodies.length)) ?? []));
        if (bodies.length === 0) {
          const reply = await blocking.blpop(keys.main, keys.low, BLOCK_SECONDS);
          if (reply === null) return [];
          bodies = [reply[1]];
        }
        const expiresAt = Date.now() + LEASE_MS;
        const tokens = bodies.map(() => `${consumerId}:${++sequence}`);
        void redis.zadd(keys.leases, ...tokens.flatMap((token) => [expiresAt, token]));
        return bodies.map((body, i) => ({ token: tokens[i]!, body }));
      },
      async ({ token, body }) => {
        await rawHandler(JSON.parse(body));
        await acks(token);
      },
    );
    return { enqueuePerSec, processPerSec: perSecond(options.jobs, t1) };
  });
}

/**
 * The drivers' SettleBatcher, bare: one call in flight with every item asked for; the items asked
 * for meanwhile go out together as the next call. Each promise resolves with its own call.
 */
function oneInFlight<T>(send: (items: T[]) => Promise<unknown>): (item: T) => Promise<void> {
  let waiting: { item: T; done: () => void; failed: (error: Error) => void }[] = [];
  let inFlight = false;
  const next = () => {
    if (inFlight || waiting.length === 0) return;
    const batch = waiting;
    waiting = [];
    inFlight = true;
    send(batch.map((w) => w.item))
      .then(
        () => {
          for (const w of batch) w.done();
        },
        (error: Error) => {
          for (const w of batch) w.failed(error);
        },
      )
      .finally(() => {
        inFlight = false;
        next();
      });
  };
  return (item) =>
    new Promise<void>((done, failed) => {
      waiting.push({ item, done, failed });
      next();
    });
}

/**
 * redis-reliable: variadic RPUSH; fetch-reliable script (BLMOVE + lease MULTI when empty);
 * settle-reliable acks of many jobs per call, one call in flight.
 */
export function rawRedisReliable(options: BaselineOptions): Promise<Rates> {
  const consumerId = randomUUID();
  return withConnections(
    options,
    async (redis, blocking, keys) => {
      // One variadic RPUSH per batch, as the driver's publish (publish.ts).
      const enqueuePerSec = await enqueue(redis, options, (multi, bodies) =>
        multi.rpush(keys.main, ...bodies),
      );

      const fetchReliable = script(redis, 'pq_fetch_reliable');
      const settleReliable = script(redis, 'pq_settle_reliable');
      const processing = keys.processing(consumerId);
      const tokens = keys.tokens(consumerId);
      const settle = oneInFlight((jobs: string[][]) =>
        settleReliable(
          processing,
          keys.leases,
          keys.leased,
          tokens,
          keys.delayed,
          keys.main,
          keys.dead,
          ...jobs.flat(),
        ),
      );
      let sequence = 0;
      const t1 = performance.now();
      await redis.zadd(keys.consumers, Date.now() + LEASE_MS, consumerId); // start(): heartbeat
      await slotLoop(
        options.jobs,
        options.concurrency,
        async (max) => {
          const fresh = Array.from({ length: max }, () => `${consumerId}:${++sequence}`);
          const flat = (await fetchReliable(
            keys.main,
            keys.low,
            processing,
            keys.leases,
            keys.leased,
            tokens,
            Date.now() + LEASE_MS,
            ...fresh,
          )) as string[];
          if (flat.length > 0) {
            const taken: { token: string; body: string }[] = [];
            for (let i = 0; i + 1 < flat.length; i += 2) taken.push({ token: flat[i]!, body: flat[i + 1]! });
            return taken;
          }
          const body = await blocking.blmove(keys.main, processing, 'LEFT', 'RIGHT', BLOCK_SECONDS);
          if (body === null) return [];
          const token = `${consumerId}:${++sequence}`;
          await exec(
            redis
              .multi()
              .zadd(keys.leases, Date.now() + LEASE_MS, token)
              .hset(keys.leased, token, body)
              .sadd(tokens, token),
          );
          return [{ token, body }];
        },
        async ({ token, body }) => {
          await rawHandler(JSON.parse(body));
          await settle([token, body, 'ack']);
        },
      );
      return { enqueuePerSec, processPerSec: perSecond(options.jobs, t1) };
    },
    (keys) => [keys.processing(consumerId), keys.tokens(consumerId)],
  );
}

/**
 * redis-streams: XADD; XREADGROUP COUNT <free> BLOCK; settle-stream acks (XACK + XDEL) of many
 * entries per call, one call in flight.
 */
export function rawRedisStreams(options: BaselineOptions): Promise<Rates> {
  return withConnections(options, async (redis, blocking, keys) => {
    // `envelope`, then `type` and `payload` for the seed article's consumers, as the driver.
    const enqueuePerSec = await enqueue(redis, options, (multi, bodies, envelopes) => {
      for (const [i, body] of bodies.entries()) {
        const envelope = envelopes[i]!;
        multi.xadd(
          keys.main,
          '*',
          'envelope',
          body,
          'type',
          envelope.type,
          'payload',
          JSON.stringify(envelope.payload ?? null),
        );
      }
    });

    const settleStream = script(redis, 'pq_settle_stream');
    const settle = oneInFlight((jobs: string[][]) =>
      settleStream(keys.main, keys.delayed, keys.dead, CONSUMER_GROUP, ...jobs.flat()),
    );
    const consumerId = randomUUID();
    const t1 = performance.now();
    await redis.xgroup('CREATE', keys.main, CONSUMER_GROUP, '0', 'MKSTREAM');
    await slotLoop(
      options.jobs,
      options.concurrency,
      async (max) => {
        const reply = (await blocking.xreadgroup(
          'GROUP',
          CONSUMER_GROUP,
          consumerId,
          'COUNT',
          max,
          'BLOCK',
          BLOCK_SECONDS * 1000,
          'STREAMS',
          keys.main,
          '>',
        )) as [string, [string, string[]][]][] | null;
        return reply ? reply.flatMap(([, entries]) => entries) : [];
      },
      async ([id, fields]) => {
        await rawHandler(JSON.parse(entryBody(fields)));
        await settle([id, 'ack']);
      },
    );
    return { enqueuePerSec, processPerSec: perSecond(options.jobs, t1) };
  });
}
