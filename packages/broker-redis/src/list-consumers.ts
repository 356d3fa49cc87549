import { randomUUID } from 'node:crypto';
import {
  AlreadySettledError,
  type Delivery,
  type Logger,
  type SettleOutcome,
  withAttempt,
} from '@polyqueue/core';
import { BodyDelivery } from './body-delivery';
import type { RedisSettings } from './config';
import type { RedisClient } from './connection';
import { delayedMember, type QueueKeys } from './keys';
import { execOrThrow } from './publish';
import { ScriptedDelivery } from './scripted-delivery';
import { runScript, type ScriptCommand, scriptCommand } from './scripts';
import { SettleBatcher } from './settle-batcher';

/** What the list broker needs from one consumer of a queue, plain or reliable. */
export interface ListConsumer {
  /** Registers the consumer (reliable: heartbeat entry) before it reports ready. */
  start(): Promise<void>;
  /** Up to max deliveries; blocks at most blockMs when the queue is empty. */
  fetch(max: number): Promise<Delivery[]>;
  /** reliable: the same without blocking, for reading ahead (none when the queue is empty). */
  fetchNow?(max: number): Promise<Delivery[]>;
  /** Heartbeat and recovery; returns when to run again (ms). */
  maintain(): Promise<number>;
  /** After the last handler finished: unregister (reliable: return anything left unsettled). */
  finish(): Promise<void>;
}

interface Context {
  redis: RedisClient;
  blocking: RedisClient;
  keys: QueueKeys;
  settings: RedisSettings;
  logger: Logger;
}

/**
 * How much longer than REDIS_BLOCK_MS a BLPOP may go unanswered on a connection that looks
 * healthy before the connection is taken for dead (a silently dropped network path fires no
 * close event) and reset. Generous: a reset can lose a reply already on its way.
 */
const STALL_GRACE_MS = 5_000;
/** How often a consumer looks for such a BLPOP. */
const STALL_CHECK_MS = 1_000;

interface PlainContext {
  redis: RedisClient;
  keys: QueueKeys;
  /** Tokens of this consumer's jobs in flight (refreshed in the leases set by maintain()). */
  handling: Set<string>;
  /** Acks: one ZREM of many in-flight records per round trip (plainAcks). */
  acks: SettleBatcher;
}

/** One consumer's acks: each job's token, removed from the in-flight records by one ZREM per batch. */
function plainAcks(redis: RedisClient, keys: QueueKeys): SettleBatcher {
  return new SettleBatcher(async (jobs) => {
    await redis.zrem(keys.leases, ...jobs.map(([token]) => token!));
    return jobs.map(() => 1);
  });
}

/**
 * A job popped by redis-list: settling removes its in-flight record, batched with the other
 * acks of its consumer, or in one MULTI with a retry or dead letter.
 */
class PlainDelivery extends BodyDelivery implements Delivery {
  readonly #consumer: PlainContext;
  readonly #token: string;
  #settled = false;

  constructor(consumer: PlainContext, token: string, body: string) {
    super(body);
    this.#consumer = consumer;
    this.#token = token;
  }

  protected fallbackId(): string {
    return randomUUID();
  }

  ack(): Promise<void> {
    return this.#settle('ack');
  }

  retry(delayMs: number): Promise<void> {
    const { keys } = this.#consumer;
    return this.#settle('retry', (multi) => {
      const next = withAttempt(this.body, this.attempt + 1, this.messageId);
      if (delayMs > 0) multi.zadd(keys.delayed, Date.now() + delayMs, delayedMember('normal', next));
      else multi.rpush(keys.main, next);
    });
  }

  deadLetter(reason: string): Promise<void> {
    const { keys } = this.#consumer;
    return this.#settle('deadLetter', (multi) => {
      multi.xadd(
        keys.dead,
        '*',
        'id',
        this.messageId,
        'body',
        this.body,
        'reason',
        reason,
        'deadAt',
        new Date().toISOString(),
      );
    });
  }

  async extend(): Promise<void> {}

  async #settle(
    outcome: SettleOutcome,
    steps?: (multi: ReturnType<RedisClient['multi']>) => void,
  ): Promise<void> {
    if (this.#settled) throw new AlreadySettledError(this.messageId, outcome);
    this.#settled = true;
    const { redis, keys, handling, acks } = this.#consumer;
    handling.delete(this.#token);
    if (!steps) {
      await acks.settle([this.#token]);
      return;
    }
    const multi = redis.multi().zrem(keys.leases, this.#token);
    steps?.(multi);
    await execOrThrow(multi);
  }
}

interface ReliableContext {
  redis: RedisClient;
  keys: QueueKeys;
  settle: SettleBatcher;
}

/** One consumer's settles: settle-reliable-7.lua with its KEYS, then every job's ARGV. */
function reliableSettles(script: ScriptCommand, keys: QueueKeys, processing: string, tokens: string) {
  return new SettleBatcher((jobs) =>
    script(processing, keys.leases, keys.leased, tokens, keys.delayed, keys.main, keys.dead, ...jobs.flat()),
  );
}

/** A job leased by redis-reliable: every settle is one job of a settle-reliable call. */
class ReliableDelivery extends ScriptedDelivery {
  readonly #consumer: ReliableContext;
  readonly #token: string;

  constructor(consumer: ReliableContext, token: string, body: string) {
    super(body);
    this.#consumer = consumer;
    this.#token = token;
  }

  protected fallbackId(): string {
    return this.#token;
  }

  deadLetter(reason: string): Promise<void> {
    return this.settle('dead', this.messageId, reason, new Date().toISOString());
  }

  // XX: a lease that recovery already took back stays gone.
  async extend(ms: number): Promise<void> {
    const { redis, keys } = this.#consumer;
    if (!this.settled) await redis.zadd(keys.leases, 'XX', Date.now() + ms, this.#token);
  }

  /**
   * This job's ARGV as settle-reliable-7.lua lists them; what follows the action is its own
   * ARGV. A job this consumer lost (0) resolves as it always did: the script queued nothing.
   */
  protected async runSettle(action: string, ...rest: (string | number)[]): Promise<void> {
    await this.#consumer.settle.settle([this.#token, this.body, action, ...rest]);
  }
}

/**
 * redis-list: BLPOP — the classic pattern, `BLPOP polyqueue:Q {polyqueue:Q}:low timeout`. Redis
 * pops from the first non-empty list, so normal and high (LPUSHed to the head of the main list)
 * go before low, and a job pushed to either list wakes the wait at once. The pop removes the job
 * from Redis: from then on the only copy is in this process, so a consumer that dies mid-job
 * loses it (at-most-once). One blocking connection feeds every handler slot, one job per BLPOP,
 * and the loop only asks when a slot is free: nothing is popped ahead of a free slot.
 *
 * In flight (stats only): right after the pop, a ZADD records token -> expiry in a sorted set,
 * refreshed by maintain() while the consumer lives and removed on settle. It lags the pop by
 * one round trip (for that moment stats count the job nowhere) and never redelivers: a crashed
 * consumer's record simply expires after REDIS_LEASE_MS.
 */
export function plainConsumer({ redis, blocking, keys, settings, logger }: Context): ListConsumer {
  const consumerId = randomUUID();
  const handling = new Set<string>();
  const consumer: PlainContext = { redis, keys, handling, acks: plainAcks(redis, keys) };
  let sequence = 0;
  let readySince = Date.now();
  const onReady = () => {
    readySince = Date.now();
  };
  blocking.on('ready', onReady);
  /** When the BLPOP in flight was sent; undefined while none is. */
  let waitingSince: number | undefined;
  let watchdog: NodeJS.Timeout | undefined;

  /**
   * One BLPOP, awaited to the end: its reply may carry a popped job, so it is never abandoned
   * while the consumer runs. When the connection drops, ioredis sends the unanswered BLPOP again
   * once it is back (autoResendUnfulfilledCommands) and it returns within REDIS_BLOCK_MS. When a
   * connection that looks ready stays silent well past the timeout, it is reset the same way.
   */
  async function blpop(): Promise<string | null> {
    watchdog ??= setInterval(checkStall, STALL_CHECK_MS);
    waitingSince = Date.now();
    try {
      const reply = await blocking.blpop(keys.main, keys.low, settings.blockMs / 1000);
      return reply === null ? null : reply[1];
    } finally {
      waitingSince = undefined;
    }
  }

  /**
   * Up to max waiting jobs without blocking: LPOP with a count (Redis 6.2) from the main list,
   * then the low-priority list for the rest, on the blocking connection between its BLPOPs.
   */
  async function popWaiting(max: number): Promise<string[]> {
    const bodies = (await blocking.lpop(keys.main, max)) ?? [];
    if (bodies.length < max) bodies.push(...((await blocking.lpop(keys.low, max - bodies.length)) ?? []));
    return bodies;
  }

  /**
   * One timer for the consumer's life, not one per BLPOP (one per job): it looks every
   * STALL_CHECK_MS whether the BLPOP in flight has gone unanswered for too long.
   */
  function checkStall(): void {
    if (waitingSince === undefined || blocking.status !== 'ready') return;
    const waited = Date.now() - waitingSince;
    if (Date.now() - Math.max(waitingSince, readySince) < settings.blockMs + STALL_GRACE_MS) return;
    logger.warn({ waitedMs: waited }, 'BLPOP unanswered; resetting the connection');
    blocking.disconnect(true);
  }

  return {
    async start() {},
    async fetch(max) {
      // With more than one free slot, take what is waiting in one round trip (LPOP with a
      // count, main list first as BLPOP would) and block only when nothing is: one BLPOP per
      // job made the round trip, not Redis, the limit of a busy queue.
      let bodies = max > 1 ? await popWaiting(max) : [];
      if (bodies.length === 0) {
        const body = await blpop();
        if (body === null) return [];
        bodies = [body];
      }
      const expiresAt = Date.now() + settings.leaseMs;
      const tokens = bodies.map(() => `${consumerId}:${++sequence}`);
      for (const token of tokens) handling.add(token);
      // Not awaited: the jobs are popped already and are handled whatever Redis answers
      // (maintain() records them when it can); an ack's ZREM, sent later on this connection,
      // still comes after it.
      redis
        .zadd(keys.leases, ...tokens.flatMap((token) => [expiresAt, token]))
        .catch((error) => logger.warn({ err: error }, 'could not record popped jobs as in flight'));
      return bodies.map((body, i) => new PlainDelivery(consumer, tokens[i]!, body));
    },
    async maintain() {
      const now = Date.now();
      const multi = redis.multi().zremrangebyscore(keys.leases, '-inf', now);
      for (const token of handling) multi.zadd(keys.leases, now + settings.leaseMs, token);
      await execOrThrow(multi);
      return maintenanceEvery(settings);
    },
    async finish() {
      clearInterval(watchdog);
      blocking.off('ready', onReady);
      await consumer.acks.idle();
      if (handling.size > 0) await redis.zrem(keys.leases, ...handling);
    },
  };
}

/**
 * redis-reliable: each job moves atomically from the queue into this consumer's processing
 * list and gets a lease (sorted set token -> deadline). A Lua fetch takes ready jobs and leases
 * them in one step; when the queue is empty, BLMOVE waits on the main list and the lease follows
 * at once. maintain() renews this consumer's heartbeat and runs the recovery every consumer
 * shares: expired leases go back to the head of the queue, and so does everything held by a
 * consumer whose heartbeat stopped (which also covers a crash between BLMOVE and the lease).
 */
export function reliableConsumer({ redis, blocking, keys, settings }: Context): ListConsumer {
  const consumerId = randomUUID();
  const processing = keys.processing(consumerId);
  const tokens = keys.tokens(consumerId);
  const consumer: ReliableContext = {
    redis,
    keys,
    settle: reliableSettles(scriptCommand(redis, 'settle-reliable'), keys, processing, tokens),
  };
  const fetchReliable = scriptCommand(redis, 'fetch-reliable');
  let sequence = 0;

  async function heartbeat(): Promise<void> {
    // Re-added every time, so a consumer re-registers by itself after a server restart lost it.
    await redis.zadd(keys.consumers, Date.now() + settings.leaseMs, consumerId);
  }

  async function recover(): Promise<void> {
    const now = Date.now();
    const expired = await redis.zrangebyscore(keys.leases, '-inf', now, 'LIMIT', 0, 500);
    const byConsumer = new Map<string, string[]>();
    for (const token of expired) {
      const owner = token.slice(0, token.lastIndexOf(':'));
      byConsumer.set(owner, [...(byConsumer.get(owner) ?? []), token]);
    }
    for (const [owner, owned] of byConsumer) {
      await runScript(
        redis,
        'recover-leases',
        [keys.leases, keys.leased, keys.processing(owner), keys.tokens(owner), keys.main],
        [now, ...owned],
      );
    }
    const silent = await redis.zrangebyscore(keys.consumers, '-inf', now, 'LIMIT', 0, 50);
    for (const owner of silent) await dropConsumer(owner, now, false);
  }

  function dropConsumer(owner: string, now: number, force: boolean) {
    return runScript(
      redis,
      'drop-consumer',
      [keys.consumers, keys.processing(owner), keys.tokens(owner), keys.leases, keys.leased, keys.main],
      [owner, now, force ? 1 : 0],
    );
  }

  /** Takes and leases up to max ready jobs in one script call, without blocking. */
  async function fetchNow(max: number): Promise<Delivery[]> {
    // fetch-reliable-6.lua: its 6 KEYS, the lease deadline, then one fresh token per job wanted.
    const args: (string | number)[] = [
      keys.main,
      keys.low,
      processing,
      keys.leases,
      keys.leased,
      tokens,
      Date.now() + settings.leaseMs,
    ];
    for (let i = 0; i < max; i++) args.push(`${consumerId}:${++sequence}`);
    const flat = (await fetchReliable(...args)) as string[];
    const taken: Delivery[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      taken.push(new ReliableDelivery(consumer, flat[i]!, flat[i + 1]!));
    }
    return taken;
  }

  return {
    start: heartbeat,
    fetchNow,
    async fetch(max) {
      const taken = await fetchNow(max);
      if (taken.length > 0) return taken;
      const body = await blocking.blmove(keys.main, processing, 'LEFT', 'RIGHT', settings.blockMs / 1000);
      if (body === null) return [];
      const token = `${consumerId}:${++sequence}`;
      await execOrThrow(
        redis
          .multi()
          .zadd(keys.leases, Date.now() + settings.leaseMs, token)
          .hset(keys.leased, token, body)
          .sadd(tokens, token),
      );
      return [new ReliableDelivery(consumer, token, body)];
    },
    async maintain() {
      await heartbeat();
      await recover();
      return maintenanceEvery(settings);
    },
    async finish() {
      await consumer.settle.idle();
      // Anything still here was left unsettled by a handler: the next consumer gets it now.
      await dropConsumer(consumerId, Date.now(), true);
    },
  };
}

/** Heartbeat and recovery run four times per lease (between 100 ms and 5 s). */
export function maintenanceEvery(settings: RedisSettings): number {
  return Math.min(5_000, Math.max(100, Math.floor(settings.leaseMs / 4)));
}
