import { errorMessage, type Priority } from '@polyqueue/core';
import type { ChannelModel } from 'amqplib';
import { DELAY_TIERS_MS, type QueueNames } from './config';
import type { AmqpConnection } from './connection';

export type QueueType = 'classic' | 'quorum';

/**
 * Priorities as AMQP message priorities on a queue declared with x-max-priority 2. A message
 * published without a priority (a foreign producer) counts as 0, the same as `low`: RabbitMQ
 * has no default other than 0. Small on purpose: a classic queue keeps one sub-queue per level.
 */
export const MAX_PRIORITY = 2;
export const PRIORITY_VALUES: Record<Priority, number> = { high: 2, normal: 1, low: 0 };

/** RabbitMQ 4's default x-delivery-limit for quorum queues, and the driver's (AMQP_DELIVERY_LIMIT). */
export const DEFAULT_DELIVERY_LIMIT = 20;

/** The arguments of each queue of a logical queue's topology; one place, so redeclares always agree. */
export function topologyArguments(
  names: QueueNames,
  type: QueueType,
  deliveryLimit: number = DEFAULT_DELIVERY_LIMIT,
) {
  const typed = type === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
  return {
    // Quorum queues (RabbitMQ 3.x) reject x-max-priority: priority is a classic-queue feature.
    // A quorum queue counts how often a message is given back (a consumer died or nacked it);
    // past the limit RabbitMQ dead-letters it, to P.Q.dead here rather than dropping it, as
    // RabbitMQ 4 does with its default limit of 20 and no dead-letter target. The reason
    // (delivery_limit) arrives in x-death, which the dead-letter listing reads.
    work:
      type === 'quorum'
        ? {
            ...typed,
            'x-delivery-limit': deliveryLimit,
            'x-dead-letter-exchange': '',
            'x-dead-letter-routing-key': names.dead,
            'x-dead-letter-strategy': 'at-least-once',
            'x-overflow': 'reject-publish',
          }
        : { 'x-max-priority': MAX_PRIORITY },
    dead: { ...typed },
    tiers: DELAY_TIERS_MS.map((ttl) => ({
      ...typed,
      'x-message-ttl': ttl,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': names.work,
      // Quorum queues dead-letter at most once unless told otherwise; a delayed job must not vanish.
      ...(type === 'quorum'
        ? { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' }
        : {}),
    })),
  };
}

/**
 * Declares a logical queue's work queue, dead-letter queue and delay tiers, once per connection
 * (a broker restart keeps durable queues, but a deleted queue is declared again after a
 * reconnection). Declaring is idempotent in AMQP; a queue that exists with other arguments is a
 * channel error, reported with what to do about it.
 */
export class Topology {
  /** What was declared on `model`; a new connection starts from nothing. */
  private model: ChannelModel | undefined;
  private declared = new Map<string, Promise<void>>();

  constructor(
    private readonly connection: AmqpConnection,
    readonly queueType: QueueType,
    readonly deliveryLimit: number = DEFAULT_DELIVERY_LIMIT,
  ) {}

  async ensure(names: QueueNames): Promise<void> {
    return this.once(`queue:${names.work}`, () => this.declare(names));
  }

  private async once(key: string, declare: () => Promise<void>): Promise<void> {
    const model = await this.connection.get();
    if (model !== this.model) {
      this.model = model;
      this.declared = new Map();
    }
    const declared = this.declared;
    let declaring = declared.get(key);
    if (!declaring) {
      declaring = declare();
      declared.set(key, declaring);
      declaring.catch(() => {
        if (declared.get(key) === declaring) declared.delete(key);
      });
    }
    return declaring;
  }

  /** Declares a topic's fanout exchange (publishEvent and subscribe both do). */
  async ensureExchange(exchange: string): Promise<void> {
    return this.once(`exchange:${exchange}`, () =>
      this.connection.withChannel(async (channel) => {
        await channel.assertExchange(exchange, 'fanout', { durable: true });
      }),
    );
  }

  /** Declares a group's queue topology and binds it to the topic's exchange. */
  async ensureGroup(exchange: string, names: QueueNames): Promise<void> {
    await this.ensureExchange(exchange);
    await this.ensure(names);
    return this.once(`binding:${exchange}:${names.work}`, () =>
      this.connection.withChannel(async (channel) => {
        await channel.bindQueue(names.work, exchange, '');
      }),
    );
  }

  /** Forgets what was declared, e.g. after the queues were deleted behind the driver's back. */
  forget(names: QueueNames): void {
    for (const key of [...this.declared.keys()]) {
      if (key === `queue:${names.work}` || key.endsWith(`:${names.work}`)) this.declared.delete(key);
    }
  }

  private async declare(names: QueueNames): Promise<void> {
    const args = topologyArguments(names, this.queueType, this.deliveryLimit);
    const queues: Array<[string, Record<string, unknown>]> = [
      [names.work, args.work],
      [names.dead, args.dead],
      ...names.tiers.map((tier, i): [string, Record<string, unknown>] => [tier, args.tiers[i]!]),
    ];
    // One channel for all: the first refusal closes it, and that refusal is the one to report.
    await this.connection.withChannel(async (channel) => {
      for (const [queue, argumentsTable] of queues) {
        try {
          await channel.assertQueue(queue, { durable: true, arguments: argumentsTable });
        } catch (error) {
          throw describeDeclareError(queue, argumentsTable, error);
        }
      }
    });
  }
}

/** PRECONDITION_FAILED on a declare means the queue exists with other arguments: say so plainly. */
export function describeDeclareError(queue: string, args: Record<string, unknown>, error: unknown): Error {
  const message = errorMessage(error);
  if (/PRECONDITION[-_]FAILED|\b406\b/.test(message)) {
    return new Error(
      `RabbitMQ refused to declare queue "${queue}" with arguments ${JSON.stringify(args)}: it already exists ` +
        'with different arguments (another queue type, priority, TTL, or a quorum queue declared before ' +
        'the driver set x-delivery-limit and its dead-letter target, or with another AMQP_DELIVERY_LIMIT). ' +
        'Drain and delete the queue (see docs/brokers/rabbitmq.md) or set AMQP_QUEUE_TYPE / ' +
        `AMQP_DELIVERY_LIMIT to match it. Broker said: ${message}`,
      { cause: error },
    );
  }
  return new Error(`could not declare RabbitMQ queue "${queue}": ${message}`, { cause: error });
}
