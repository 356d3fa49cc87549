/**
 * redis-streams — job queues on Redis Streams with consumer groups.
 *
 * Guarantees: at-least-once. XREADGROUP hands an entry to one consumer of the group `polyqueue`;
 * it stays in the group's pending list until XACK. An entry whose consumer stayed quiet for
 * longer than the lease (REDIS_LEASE_MS) is taken over with XAUTOCLAIM by any live consumer;
 * one delivered more than REDIS_MAX_DELIVERIES times without a settle (a job that keeps killing
 * its worker) moves to the dead letters. extend() resets the entry's idle clock (XCLAIM JUSTID
 * to the same consumer), which buys one more lease whatever ms it is given. Ack durability
 * 'on-resolve': ack() resolves after the script that XACKs + XDELs its entry ran (a Redis
 * restart keeps it only with AOF). A consumer's settles go out in batches, one script call for
 * all asked for while the previous call was in flight (settle-batcher.ts).
 *
 * Native vs emulated
 *   queue, consumer group, crash redelivery, delivery count   native
 *   FIFO order                                                native (one consumer)
 *   delayed jobs, retry delay     emulated: sorted set by due time, XADDed by a Lua script
 *   priority                      none (one stream has one order)
 *   pub/sub                       emulated: one stream per group, registered in a set per topic,
 *                                 so each group retries and dead-letters on its own
 *   dead letters                  a stream `{polyqueue:Q}:dead` (id, body, reason, deadAt)
 *
 * Acked entries are deleted (XACK + XDEL in one script), so XLEN is ready + in flight.
 *
 * Keys for queue Q (prefix polyqueue; all in one cluster slot):
 *   polyqueue:Q             stream; entry field `envelope` (JSON), or the classic `type` +
 *                           `payload` (JSON text): `XADD polyqueue:email * type send_email payload '{...}'`,
 *                           or flat fields: `XADD polyqueue:email * type send_email to a@example.com`
 *   {polyqueue:Q}:delayed   sorted set of delayed jobs
 *   {polyqueue:Q}:dead      dead-letter stream
 *
 * Connection string: REDIS_URL=redis://[user:password@]host:6379[/db] (rediss:// for TLS).
 * Options: POLYQUEUE_PREFIX, REDIS_BLOCK_MS, REDIS_POLL_MS, REDIS_LEASE_MS, REDIS_MAX_DELIVERIES.
 */
import { randomUUID } from 'node:crypto';
import type {
  Capabilities,
  CompleteBroker,
  ConsumeOptions,
  Delivery,
  DeliveryHandler,
  Logger,
  QueueStats,
} from '@polyqueue/core';
import type { RedisSettings } from './config';
import type { RedisClient } from './connection';
import { connect, connected } from './connection';
import { repeat } from './consume-loop';
import type { QueueKeys } from './keys';
import { maintenanceEvery } from './list-consumers';
import { RedisBrokerBase } from './redis-broker-base';
import { ScriptedDelivery } from './scripted-delivery';
import { runScript, type ScriptCommand, scriptCommand } from './scripts';
import { SettleBatcher } from './settle-batcher';

/** The consumer group every redis-streams queue is read with. */
export const CONSUMER_GROUP = 'polyqueue';

const CAPABILITIES: Capabilities = {
  delayedDelivery: 'emulated',
  priority: 'none',
  redeliveryAfterCrash: 'lease',
  ordering: 'fifo',
  pubsub: 'emulated',
  leaseExtension: true,
  delivery: 'at-least-once',
  // ack() awaits the script that XACKs and XDELs the entry.
  ackDurable: 'on-resolve',
  crossProcess: true,
};

export async function createStreamsBroker(settings: RedisSettings, logger: Logger): Promise<CompleteBroker> {
  const redis = connect(settings, logger, 'streams-commands');
  await connected(redis, settings);
  return new RedisStreamsBroker(settings, logger, redis);
}

/**
 * The body of one stream entry: the `envelope` field; or the classic `type` + `payload` (JSON
 * text) fields; or flat fields, `XADD polyqueue:email * type send_email to a@example.com`, as a
 * flat JSON object of strings that decodeEnvelope reads as `{type, payload: {to}}`.
 * reclaim-stream-2.lua builds the same body for an entry it dead-letters.
 */
export function entryBody(fields: readonly string[]): string {
  // What publish writes (`envelope` first, then `type` and `payload` for the article's
  // consumers) and what the scripts write (`envelope` alone).
  if (fields[0] === 'envelope') return fields[1]!;
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
  if (record.envelope !== undefined) return record.envelope;
  if (record.type !== undefined && record.payload !== undefined) {
    // payload is JSON text; left as it is, so a bad one makes the body fail to decode (dead letter).
    return `{"type":${JSON.stringify(record.type)},"payload":${record.payload}}`;
  }
  return JSON.stringify(record);
}

/** One consumer's settles: settle-stream-3.lua with its KEYS, the group, then every job's ARGV. */
function streamSettles(script: ScriptCommand, keys: QueueKeys): SettleBatcher {
  return new SettleBatcher((jobs) =>
    script(keys.main, keys.delayed, keys.dead, CONSUMER_GROUP, ...jobs.flat()),
  );
}

interface StreamContext {
  redis: RedisClient;
  keys: QueueKeys;
  consumerId: string;
  settle: SettleBatcher;
}

/** One stream entry handed to this consumer: every settle is one job of a settle-stream call. */
class StreamDelivery extends ScriptedDelivery {
  readonly #consumer: StreamContext;
  readonly #entryId: string;

  constructor(consumer: StreamContext, entryId: string, fields: readonly string[]) {
    super(entryBody(fields));
    this.#consumer = consumer;
    this.#entryId = entryId;
  }

  protected fallbackId(): string {
    return this.#entryId;
  }

  deadLetter(reason: string): Promise<void> {
    return this.settle('dead', this.messageId, this.body, reason, new Date().toISOString());
  }

  /** Resets the entry's idle clock: XCLAIM to the same consumer. */
  async extend(): Promise<void> {
    const { redis, keys, consumerId } = this.#consumer;
    if (!this.settled) await redis.xclaim(keys.main, CONSUMER_GROUP, consumerId, 0, this.#entryId, 'JUSTID');
  }

  /**
   * This job's ARGV as settle-stream-3.lua lists them; what follows the action is its own ARGV.
   * An entry no longer pending (0) resolves as it always did: the script left it alone.
   */
  protected async runSettle(action: string, ...rest: (string | number)[]): Promise<void> {
    await this.#consumer.settle.settle([this.#entryId, action, ...rest]);
  }
}

class RedisStreamsBroker extends RedisBrokerBase {
  readonly name = 'redis-streams';
  readonly capabilities = CAPABILITIES;

  constructor(settings: RedisSettings, logger: Logger, redis: RedisClient) {
    super(settings, logger, redis, 'stream');
  }

  async #ensureGroup(keys: QueueKeys): Promise<void> {
    try {
      // From 0: entries added before the first consumer joined are work too.
      await this.redis.xgroup('CREATE', keys.main, CONSUMER_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!(error as Error).message.includes('BUSYGROUP')) throw error;
    }
  }

  protected async consumeKeys(
    keys: QueueKeys,
    handler: DeliveryHandler,
    options: ConsumeOptions,
    register?: () => Promise<void>,
  ) {
    const { settings, logger, redis } = this;
    const consumerId = randomUUID();
    const reclaimEvery = maintenanceEvery(settings);
    let nextReclaim = 0;

    const consumer: StreamContext = {
      redis,
      keys,
      consumerId,
      settle: streamSettles(scriptCommand(redis, 'settle-stream'), keys),
    };

    // `block`: wait up to REDIS_BLOCK_MS for a first entry (the blocking connection); without
    // it, what is there now (read-ahead, on the command connection).
    const fetch = async (connection: RedisClient, max: number, block: boolean): Promise<Delivery[]> => {
      if (Date.now() >= nextReclaim) {
        nextReclaim = Date.now() + reclaimEvery;
        const flat = (await runScript(
          redis,
          'reclaim-stream',
          [keys.main, keys.dead],
          [
            CONSUMER_GROUP,
            consumerId,
            settings.leaseMs,
            max,
            settings.maxDeliveries,
            new Date().toISOString(),
          ],
        )) as unknown[];
        if (flat.length > 0) {
          // Triples: entry id, fields, delivery count.
          const taken: Delivery[] = [];
          for (let i = 0; i + 2 < flat.length; i += 3) {
            taken.push(new StreamDelivery(consumer, flat[i] as string, flat[i + 1] as string[]));
          }
          return taken;
        }
      }
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = (await (block
          ? connection.xreadgroup(
              'GROUP',
              CONSUMER_GROUP,
              consumerId,
              'COUNT',
              max,
              'BLOCK',
              settings.blockMs,
              'STREAMS',
              keys.main,
              '>',
            )
          : connection.xreadgroup(
              'GROUP',
              CONSUMER_GROUP,
              consumerId,
              'COUNT',
              max,
              'STREAMS',
              keys.main,
              '>',
            ))) as [string, [string, string[]][]][] | null;
      } catch (error) {
        // The group is gone (a server restart without persistence, a deleted key): join again.
        if ((error as Error).message.includes('NOGROUP')) {
          await this.#ensureGroup(keys);
          return [];
        }
        throw error;
      }
      if (!reply) return [];
      const taken: Delivery[] = [];
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) taken.push(new StreamDelivery(consumer, id, fields));
      }
      return taken;
    };

    await this.runConsumer('streams-consumer', handler, options, {
      start: async (blocking, maintenance) => {
        await this.#ensureGroup(keys);
        await register?.();
        const tasks = [
          repeat(
            () => this.promoteDelayed('promote-delayed-stream', [keys.delayed, keys.main]),
            settings.pollMs,
            maintenance,
            logger,
            'promoting delayed jobs',
          ),
        ];
        if (register) {
          tasks.push(
            repeat(
              async () => {
                await register();
                return reclaimEvery;
              },
              reclaimEvery,
              maintenance,
              logger,
              'group registration',
            ),
          );
        }
        return {
          fetch: (max) => fetch(blocking, max, true),
          readNow: (max) => fetch(redis, max, false),
          tasks,
        };
      },
      finish: async () => {
        // Settles still on their way are answered first, so the entries they ack count as done.
        await consumer.settle.idle();
        await this.#forgetConsumer(keys, consumerId).catch((error) =>
          logger.warn({ err: error }, 'could not remove the consumer from its group'),
        );
      },
    });
  }

  /** Removes a stopped consumer from the group unless it still owns pending entries (lost otherwise). */
  async #forgetConsumer(keys: QueueKeys, consumerId: string): Promise<void> {
    const pending = (await this.redis.xpending(
      keys.main,
      CONSUMER_GROUP,
      '-',
      '+',
      1,
      consumerId,
    )) as unknown[];
    if (pending.length === 0) await this.redis.xgroup('DELCONSUMER', keys.main, CONSUMER_GROUP, consumerId);
  }

  async stats(queue: string): Promise<QueueStats> {
    const keys = this.keys(queue);
    const results = (await this.redis
      .pipeline()
      .xlen(keys.main)
      .xpending(keys.main, CONSUMER_GROUP)
      .zcard(keys.delayed)
      .xlen(keys.dead)
      .exec()) as [Error | null, unknown][];
    const value = (i: number) => {
      const [error, result] = results[i]!;
      if (error && !(i === 1 && error.message.includes('NOGROUP'))) throw error;
      return result;
    };
    const length = Number(value(0));
    const pending = Number((value(1) as [number] | null)?.[0] ?? 0);
    return {
      ready: Math.max(0, length - pending),
      inFlight: pending,
      delayed: Number(value(2)),
      dead: Number(value(3)),
    };
  }
}
