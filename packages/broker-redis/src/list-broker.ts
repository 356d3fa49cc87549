/**
 * redis-list and redis-reliable — job queues on Redis lists.
 *
 * Guarantees
 *   redis-list      at-most-once. RPUSH / BLPOP, the classic pattern: BLPOP takes the job out
 *                   of Redis as it hands it over, so from then on the only copy is in the
 *                   consumer's memory and a consumer that dies mid-job (or a reply lost with a
 *                   dropped connection) loses it. No redelivery after a crash, by design.
 *                   `BLPOP main low timeout` pops from the first non-empty list. What is in
 *                   flight is recorded right after the pop (one round trip later), for stats.
 *   redis-reliable  at-least-once. BLMOVE into a per-consumer processing list plus a lease per
 *                   job (sorted set token -> deadline). An atomic Lua recovery, run by every
 *                   consumer, returns jobs whose lease expired and everything held by a consumer
 *                   whose heartbeat stopped; extend() renews a lease; ack removes the job.
 *   Ack durability  'on-resolve' for both: ack() resolves after Redis ran it (reliable: the
 *                   settle script; list: the MULTI that clears the in-flight record, BLPOP
 *                   having already removed the job). Surviving a Redis restart is another
 *                   matter: that takes AOF (appendfsync), see docs/brokers/redis.md.
 *
 * Native vs emulated
 *   queue, FIFO order          native (one list; FIFO with one consumer)
 *   delayed jobs, retry delay  emulated: sorted set by due time, moved by a Lua script
 *   priority                   emulated: high is LPUSHed to the head of the main list (in order
 *                              within a batch, newest batch first), low waits in its own list and
 *                              is taken only when the main list is empty (redis-list: BLPOP
 *                              lists both keys). On an idle reliable queue a low job can wait up
 *                              to REDIS_BLOCK_MS (BLMOVE watches the main list only).
 *   pub/sub                    emulated: one queue per group, registered in a set per topic
 *   dead letters               a stream `{polyqueue:Q}:dead` (id, body, reason, deadAt)
 *
 * Keys for queue Q (prefix polyqueue; see keys.ts, all in one cluster slot):
 *   polyqueue:Q                   main list: RPUSH a JSON envelope or {type, payload} to enqueue
 *   {polyqueue:Q}:low             low-priority list
 *   {polyqueue:Q}:delayed         sorted set of delayed jobs
 *   {polyqueue:Q}:dead            dead-letter stream
 *   {polyqueue:Q}:leases          reliable: token -> lease deadline; list: token -> expiry of what is
 *                                 in flight, for stats only (refreshed while the consumer lives)
 *   {polyqueue:Q}:leased          reliable: hash token -> body
 *   {polyqueue:Q}:consumers       reliable: consumer id -> heartbeat deadline
 *   {polyqueue:Q}:processing:<id> reliable: one consumer's processing list
 *   {polyqueue:Q}:tokens:<id>     reliable: one consumer's lease tokens
 *
 * Connection string: REDIS_URL=redis://[user:password@]host:6379[/db] (rediss:// for TLS).
 * Options: POLYQUEUE_PREFIX, REDIS_BLOCK_MS, REDIS_POLL_MS, REDIS_LEASE_MS (reliable: the lease;
 * list: how long a crashed consumer's jobs still count as in flight); see config.ts.
 * A body without an `id` (a classic producer's {type, payload}) gets a fresh id per delivery:
 * give it an id if a crash redelivery must be recognised by idempotency.
 */
import type {
  Capabilities,
  CompleteBroker,
  ConsumeOptions,
  DeliveryHandler,
  Logger,
  QueueStats,
} from '@polyqueue/core';
import type { RedisSettings } from './config';
import type { RedisClient } from './connection';
import { connect, connected } from './connection';
import { repeat } from './consume-loop';
import type { QueueKeys } from './keys';
import { type ListConsumer, plainConsumer, reliableConsumer } from './list-consumers';
import { execOrThrow } from './publish';
import { RedisBrokerBase } from './redis-broker-base';

export type ListMode = 'plain' | 'reliable';

const CAPABILITIES: Record<ListMode, Capabilities> = {
  plain: {
    delayedDelivery: 'emulated',
    priority: 'emulated',
    redeliveryAfterCrash: 'none',
    ordering: 'fifo',
    pubsub: 'emulated',
    leaseExtension: false,
    delivery: 'at-most-once',
    // BLPOP took the job out of Redis; ack() awaits the MULTI that clears its in-flight record.
    ackDurable: 'on-resolve',
    crossProcess: true,
  },
  reliable: {
    delayedDelivery: 'emulated',
    priority: 'emulated',
    redeliveryAfterCrash: 'lease',
    ordering: 'fifo',
    pubsub: 'emulated',
    leaseExtension: true,
    delivery: 'at-least-once',
    // ack() awaits the Lua script that removes the job and its lease.
    ackDurable: 'on-resolve',
    crossProcess: true,
  },
};

export async function createListBroker(
  settings: RedisSettings,
  mode: ListMode,
  logger: Logger,
): Promise<CompleteBroker> {
  const redis = connect(settings, logger, `${mode}-commands`);
  await connected(redis, settings);
  return new RedisListBroker(settings, mode, logger, redis);
}

class RedisListBroker extends RedisBrokerBase {
  readonly name: string;
  readonly capabilities: Capabilities;

  constructor(
    settings: RedisSettings,
    private readonly mode: ListMode,
    logger: Logger,
    redis: RedisClient,
  ) {
    super(settings, logger, redis, 'list');
    this.name = mode === 'plain' ? 'redis-list' : 'redis-reliable';
    this.capabilities = CAPABILITIES[mode];
  }

  protected async consumeKeys(
    keys: QueueKeys,
    handler: DeliveryHandler,
    options: ConsumeOptions,
    register?: () => Promise<void>,
  ) {
    const { settings, logger, redis } = this;
    let consumer: ListConsumer | undefined;
    await this.runConsumer(`${this.name}-consumer`, handler, options, {
      start: async (blocking, maintenance) => {
        const context = { redis, blocking, keys, settings, logger };
        consumer = this.mode === 'plain' ? plainConsumer(context) : reliableConsumer(context);
        const started = consumer;
        await started.start();
        await register?.();
        const tasks = [
          repeat(
            () => this.promoteDelayed('promote-delayed', [keys.delayed, keys.main, keys.low]),
            settings.pollMs,
            maintenance,
            logger,
            'promoting delayed jobs',
          ),
          repeat(
            async () => {
              await register?.();
              return started.maintain();
            },
            settings.pollMs,
            maintenance,
            logger,
            'consumer maintenance',
          ),
        ];
        const { fetchNow } = started;
        return {
          fetch: (max) => started.fetch(max),
          ...(fetchNow && { readNow: (max: number) => fetchNow(max) }),
          tasks,
        };
      },
      finish: async () => {
        await consumer
          ?.finish()
          .catch((error) => logger.warn({ err: error }, 'could not unregister the consumer'));
      },
    });
  }

  async stats(queue: string): Promise<QueueStats> {
    const keys = this.keys(queue);
    const now = Date.now();
    const [main, low, delayed, dead, consumers, inFlightPlain] = (await execOrThrow(
      this.redis
        .multi()
        .llen(keys.main)
        .llen(keys.low)
        .zcard(keys.delayed)
        .xlen(keys.dead)
        .zrange(keys.consumers, 0, -1)
        .zcount(keys.leases, `(${now}`, '+inf'),
    )) as [number, number, number, number, string[], number];
    let inFlight = inFlightPlain;
    if (this.mode === 'reliable') {
      const lengths =
        consumers.length > 0
          ? await Promise.all(consumers.map((c) => this.redis.llen(keys.processing(c))))
          : [];
      inFlight = lengths.reduce((sum, n) => sum + n, 0);
    }
    return { ready: main + low, inFlight, delayed, dead };
  }
}
