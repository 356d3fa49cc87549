/**
 * What the three Redis drivers share: names and connections, publish (one MULTI per batch),
 * pub/sub as one queue per registered group, the dead-letter stream, the Lua mover for delayed
 * jobs, ping and close. Each driver supplies its consumer (consumeKeys) and its stats.
 */
import type {
  Broker,
  Capabilities,
  ConsumeOptions,
  DeadLetterStore,
  DeliveryHandler,
  Envelope,
  Logger,
  OutgoingMessage,
  QueueStats,
} from '@polyqueue/core';
import type { Redis } from 'ioredis';
import type { RedisSettings } from './config';
import { connect, disconnect, ping } from './connection';
import { StreamDeadLetters } from './dead-letters';
import { groupKeys, type QueueKeys, queueKeys, topicGroupsKey } from './keys';
import { publishBatch, publishToGroups } from './publish';
import { runScript, type ScriptName } from './scripts';

/** How jobs sit in the main key: a list (redis-list, redis-reliable) or a stream. */
export type StorageKind = 'list' | 'stream';

export abstract class RedisBrokerBase implements Broker {
  abstract readonly name: string;
  abstract readonly capabilities: Capabilities;
  /** REDIS_LEASE_MS, for the drivers whose deliveries are leased (not plain redis-list). */
  get leaseMs(): number | undefined {
    return this.capabilities.redeliveryAfterCrash === 'lease' ? this.settings.leaseMs : undefined;
  }
  readonly #consumerConnections = new Set<Redis>();

  constructor(
    protected readonly settings: RedisSettings,
    protected readonly logger: Logger,
    protected readonly redis: Redis,
    private readonly kind: StorageKind,
  ) {}

  /** Runs one consumer on a queue's keys; `register` re-announces a subscriber group. */
  protected abstract consumeKeys(
    keys: QueueKeys,
    handler: DeliveryHandler,
    options: ConsumeOptions,
    register?: () => Promise<void>,
  ): Promise<void>;

  abstract stats(queue: string): Promise<QueueStats>;

  protected keys(queue: string): QueueKeys {
    return queueKeys(this.settings.prefix, queue);
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    await publishBatch(this.redis, this.keys(queue), this.kind, messages);
  }

  consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    return this.consumeKeys(this.keys(queue), handler, options);
  }

  async publishEvent(topic: string, event: Envelope): Promise<void> {
    await publishToGroups(this.redis, this.settings.prefix, topic, this.kind, event);
  }

  subscribe(topic: string, group: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const groups = topicGroupsKey(this.settings.prefix, topic);
    const register = async () => {
      await this.redis.sadd(groups, group);
    };
    return this.consumeKeys(groupKeys(this.settings.prefix, topic, group), handler, options, register);
  }

  deadLetters(queue: string): DeadLetterStore {
    return new StreamDeadLetters(this.redis, this.keys(queue), this.kind);
  }

  /** A consumer's own blocking connection, closed with the broker if the consumer is still running. */
  protected openBlocking(role: string): Redis {
    const blocking = connect(this.settings.url, this.logger, role, { blocking: true });
    this.#consumerConnections.add(blocking);
    return blocking;
  }

  protected async closeBlocking(blocking: Redis): Promise<void> {
    this.#consumerConnections.delete(blocking);
    await disconnect(blocking);
  }

  /**
   * Runs a promote script (KEYS: delayed, then the lists or stream to move into; ARGV: now,
   * limit) and returns how long until the next delayed job is due (at most pollMs).
   */
  protected async promoteDelayed(script: ScriptName, keys: readonly string[]): Promise<number> {
    const [moved, nextDue] = (await runScript(this.redis, script, keys, [Date.now(), 500])) as [
      number,
      number,
    ];
    if (moved >= 500) return 0;
    return nextDue < 0 ? this.settings.pollMs : Math.min(this.settings.pollMs, nextDue - Date.now());
  }

  ping(): Promise<void> {
    return ping(this.redis);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#consumerConnections].map((c) => disconnect(c)));
    await disconnect(this.redis);
  }
}
