/**
 * What the three Redis drivers share: names and connections, publish (one MULTI per batch),
 * pub/sub as one queue per registered group, the dead-letter stream, the Lua mover for delayed
 * jobs, ping and close. Each driver supplies its consumer (consumeKeys) and its stats.
 */
import type {
  Broker,
  BrokerAdmin,
  BrokerEvents,
  Capabilities,
  ConsumeOptions,
  DeadLetterStore,
  Delivery,
  DeliveryHandler,
  Envelope,
  Logger,
  OutgoingMessage,
  QueueStats,
} from '@polyqueue/core';
import type { RedisSettings } from './config';
import type { RedisClient } from './connection';
import { connect, connected, disconnect, ping } from './connection';
import { runConsumeLoop, watchConnection } from './consume-loop';
import { StreamDeadLetters } from './dead-letters';
import { checkKeyTypes, isWrongTypeError, type StorageKind, WrongKeyTypeError } from './key-types';
import { groupKeys, type QueueKeys, queueKeys, topicGroupsKey } from './keys';
import { publishBatch, publishToGroups } from './publish';
import { runScript, type ScriptName } from './scripts';

export type { StorageKind } from './key-types';

/** What a driver's consumer does around the shared consume loop (see runConsumer). */
export interface ConsumerLife {
  /**
   * Runs once the blocking connection is up: joins the queue, starts its maintenance tasks
   * (which stop with `maintenance`) and returns them with the fetch of the consume loop.
   */
  start(
    blocking: RedisClient,
    maintenance: AbortSignal,
  ): Promise<{
    fetch: (max: number) => Promise<Delivery[]>;
    /** The fetch without blocking, for a leased driver: its consumer reads ahead (read-ahead.ts). */
    readNow?: (max: number) => Promise<Delivery[]>;
    tasks: Promise<void>[];
  }>;
  /** Runs last, after the maintenance stopped and the blocking connection closed. */
  finish(): Promise<void>;
}

export abstract class RedisBrokerBase implements Broker, BrokerEvents, BrokerAdmin {
  abstract readonly name: string;
  abstract readonly capabilities: Capabilities;
  /** REDIS_LEASE_MS, for the drivers whose deliveries are leased (not plain redis-list). */
  get leaseMs(): number | undefined {
    return this.capabilities.redeliveryAfterCrash === 'lease' ? this.settings.leaseMs : undefined;
  }
  readonly #consumerConnections = new Set<RedisClient>();
  /** Every queue this process touched (main key -> keys): what ping() checks the types of. */
  readonly #known = new Map<string, QueueKeys>();
  /** Queues whose key types were checked once (publish checks a queue on first use). */
  readonly #verified = new Set<string>();

  constructor(
    protected readonly settings: RedisSettings,
    protected readonly logger: Logger,
    protected readonly redis: RedisClient,
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
    return this.#remember(queueKeys(this.settings.prefix, queue));
  }

  #remember(keys: QueueKeys): QueueKeys {
    if (!this.#known.has(keys.main)) this.#known.set(keys.main, keys);
    return keys;
  }

  /** Throws a WrongKeyTypeError naming a key of this queue another driver left behind. */
  async #verify(keys: QueueKeys): Promise<void> {
    await checkKeyTypes(this.redis, this.name, [keys], this.kind);
    this.#verified.add(keys.main);
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const keys = this.keys(queue);
    if (!this.#verified.has(keys.main)) await this.#verify(keys);
    try {
      await publishBatch(this.redis, keys, this.kind, messages);
    } catch (error) {
      // A key replaced since the first check: say which one instead of a bare WRONGTYPE.
      if (isWrongTypeError(error)) {
        this.#verified.delete(keys.main);
        await this.#verify(keys);
      }
      throw error;
    }
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const keys = this.keys(queue);
    await this.#verifyBeforeConsuming(keys);
    return this.consumeKeys(keys, handler, options);
  }

  /**
   * A consumer fails at start on a key of the wrong type: it could only fail on every fetch.
   * Any other error (Redis not there yet) is left to the consumer, which waits for Redis.
   */
  async #verifyBeforeConsuming(keys: QueueKeys): Promise<void> {
    try {
      await this.#verify(keys);
    } catch (error) {
      if (error instanceof WrongKeyTypeError) throw error;
    }
  }

  async publishEvent(topic: string, event: Envelope): Promise<void> {
    await publishToGroups(this.redis, this.settings.prefix, topic, this.kind, event);
  }

  subscribe(topic: string, group: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const groups = topicGroupsKey(this.settings.prefix, topic);
    const register = async () => {
      await this.redis.sadd(groups, group);
    };
    const keys = this.#remember(groupKeys(this.settings.prefix, topic, group));
    return this.#verifyBeforeConsuming(keys).then(() => this.consumeKeys(keys, handler, options, register));
  }

  deadLetters(queue: string): DeadLetterStore {
    return new StreamDeadLetters(this.redis, this.keys(queue), this.kind);
  }

  /** A consumer's own blocking connection, closed with the broker if the consumer is still running. */
  protected openBlocking(role: string): RedisClient {
    const blocking = connect(this.settings, this.logger, role, { blocking: true });
    this.#consumerConnections.add(blocking);
    return blocking;
  }

  protected async closeBlocking(blocking: RedisClient): Promise<void> {
    this.#consumerConnections.delete(blocking);
    await disconnect(blocking);
  }

  /**
   * One consumer's life, the same for every Redis driver: its own blocking connection (watched
   * for the connection state), `life.start` once it is up, onReady, the consume loop until the
   * signal; then the maintenance stopped, the connection closed and `life.finish`.
   */
  protected async runConsumer(
    role: string,
    handler: DeliveryHandler,
    options: ConsumeOptions,
    life: ConsumerLife,
  ): Promise<void> {
    const blocking = this.openBlocking(role);
    const unwatch = watchConnection(blocking, options);
    const maintenance = new AbortController();
    let tasks: Promise<void>[] = [];
    try {
      await connected(blocking, this.settings);
      const started = await life.start(blocking, maintenance.signal);
      tasks = started.tasks;
      options.onReady?.();
      await runConsumeLoop({
        signal: options.signal,
        concurrency: options.concurrency,
        fetch: started.fetch,
        ...(started.readNow && { readNow: started.readNow, leaseMs: this.settings.leaseMs }),
        handler,
        logger: this.logger,
        abandonFetch: () => blocking.status !== 'ready',
      });
    } finally {
      maintenance.abort();
      await Promise.all(tasks);
      unwatch();
      // Disconnect before finish(): nothing can move into this consumer's processing list after
      // finish() handed its contents back.
      await this.closeBlocking(blocking);
      await life.finish();
    }
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

  /** Redis answers, and no queue this process uses has a key of the wrong type (for /readyz). */
  async ping(): Promise<void> {
    await ping(this.redis);
    await checkKeyTypes(this.redis, this.name, this.#known.values(), this.kind);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#consumerConnections].map((c) => disconnect(c)));
    await disconnect(this.redis);
  }
}
