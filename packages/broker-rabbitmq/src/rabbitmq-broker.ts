/**
 * RabbitMQ driver (BROKER=rabbitmq), on amqplib.
 *
 * Guarantees: at-least-once. Queues are durable, messages persistent, publish() resolves only
 * after publisher confirms, consumers ack manually (coalesced per event-loop turn, `multiple`
 * for a run of settled deliveries) with a prefetch of max(concurrency, AMQP_PREFETCH). A consumer that
 * dies holding messages (process killed, connection dropped) gets them requeued by the broker
 * when its connection closes (redeliveryAfterCrash: 'connection'); there are no leases, so a
 * live but stuck handler keeps its message (extend() is a no-op). Ack durability 'eventually':
 * AMQP 0-9-1 confirms no basic.ack, so ack() resolves once the frame is handed to the socket;
 * if the connection dies before RabbitMQ reads it, the message is requeued (a redelivery).
 *
 * Native: durable queues, confirms, priority (x-max-priority 2 on classic queues), pub/sub (one
 * fanout exchange per topic, one durable queue per group), FIFO for one consumer, delays by
 * TTL + dead-letter exchange. Emulated by the driver: hopping through TTL tiers for delays
 * longer than one tier (delay.ts), and the dead-letter queue itself (an explicit publish with
 * the reason in headers, then ack). stats().inFlight counts only this process's handlers: AMQP
 * reports ready messages, not unacked ones, and the management plugin is not required.
 *
 * Topology for logical queue Q with prefix P (all durable, on the default exchange):
 *   P.Q                      work queue (x-max-priority 2, or x-queue-type quorum with
 *                            x-delivery-limit and dead-lettering to P.Q.dead)
 *   P.Q.dead                 dead letters, headers x-polyqueue-reason / -dead-at / -id
 *   P.Q.delay.250ms … .1h    TTL tiers, x-dead-letter-routing-key P.Q
 *   P.events.T               fanout exchange of topic T; P.events.T.G the queue of group G
 *
 * Connection string: AMQP_URL (amqp://user:pass@host:5672/vhost, amqps:// for TLS).
 * Options: AMQP_QUEUE_TYPE classic|quorum (quorum: replicated, no priority), AMQP_DELIVERY_LIMIT
 * (quorum: returns before RabbitMQ dead-letters a message to P.Q.dead), POLYQUEUE_PREFIX,
 * AMQP_PREFETCH (deliveries held per consumer, default its concurrency; the extra ones wait
 * in the worker for a handler slot),
 * AMQP_RECONNECT_MAX_MS, AMQP_CONNECT_TIMEOUT_MS, AMQP_HEARTBEAT_S.
 */
import type {
  Broker,
  BrokerAdmin,
  BrokerEvents,
  Capabilities,
  CompleteBroker,
  ConsumeOptions,
  DeadLetterStore,
  DeliveryHandler,
  Envelope,
  Logger,
  OutgoingMessage,
  QueueStats,
} from '@polyqueue/core';
import { encodeEnvelope } from '@polyqueue/core';
import { groupQueueNames, type QueueNames, queueNames, type RabbitmqConfig, topicExchange } from './config';
import { AmqpConnection } from './connection';
import { runConsumer } from './consumer';
import { createDeadLetterStore } from './dead-letters';
import { baseProperties, type Outgoing, recordAttempt, routeFor, SharedPublisher } from './publisher';
import { PRIORITY_VALUES, Topology } from './topology';

export async function createRabbitmqBroker(
  config: RabbitmqConfig,
  deps: { logger: Logger },
): Promise<CompleteBroker> {
  const connection = new AmqpConnection({
    url: config.AMQP_URL,
    reconnectMaxMs: config.AMQP_RECONNECT_MAX_MS,
    connectTimeoutMs: config.AMQP_CONNECT_TIMEOUT_MS,
    heartbeatS: config.AMQP_HEARTBEAT_S,
    logger: deps.logger,
  });
  await connection.start();
  return new RabbitmqBroker(connection, config, deps.logger);
}

class RabbitmqBroker implements Broker, BrokerEvents, BrokerAdmin {
  readonly name = 'rabbitmq';
  readonly capabilities: Capabilities;
  private readonly topology: Topology;
  private readonly publisher: SharedPublisher;
  /** Deliveries held by this process's handlers, per work queue (shared by its consumers). */
  private readonly inFlight = new Map<string, { count: number }>();
  private readonly consumers = new Set<{ stop: () => Promise<void> }>();
  private closed = false;

  constructor(
    private readonly connection: AmqpConnection,
    private readonly config: RabbitmqConfig,
    private readonly logger: Logger,
  ) {
    this.topology = new Topology(connection, config.AMQP_QUEUE_TYPE, config.AMQP_DELIVERY_LIMIT);
    this.publisher = new SharedPublisher(connection);
    this.capabilities = {
      delayedDelivery: 'native',
      priority: config.AMQP_QUEUE_TYPE === 'quorum' ? 'none' : 'native',
      redeliveryAfterCrash: 'connection',
      ordering: 'fifo',
      pubsub: 'native',
      leaseExtension: false,
      delivery: 'at-least-once',
      // basic.ack has no confirm in AMQP 0-9-1: ack() resolves once the frame is handed to the socket.
      ackDurable: 'eventually',
      crossProcess: true,
    };
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const names = this.names(queue);
    await this.topology.ensure(names);
    const now = Date.now();
    const priorities = this.capabilities.priority === 'native';
    const outgoing = messages.map((message): Outgoing => {
      const route = routeFor(names, message.delayMs, now);
      const options = {
        ...baseProperties(message.envelope.id, now),
        headers: recordAttempt(route.headers, message.envelope.attempt),
        mandatory: true,
      };
      if (priorities) options.priority = PRIORITY_VALUES[message.priority ?? 'normal'];
      const body = Buffer.from(encodeEnvelope(message.envelope), 'utf8');
      return { exchange: '', routingKey: route.routingKey, body, options };
    });
    const unroutable = await this.publisher.publish(outgoing);
    if (unroutable.length > 0) {
      // Declared once per connection, yet gone: someone deleted the queue. Declare it again and resend.
      this.logger.warn(
        { queue: names.work, count: unroutable.length },
        'RabbitMQ returned unroutable messages; redeclaring',
      );
      this.topology.forget(names);
      await this.topology.ensure(names);
      const still = await this.publisher.publish(unroutable);
      if (still.length > 0)
        throw new Error(`RabbitMQ could not route ${still.length} message(s) to "${names.work}"`);
    }
  }

  consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const names = this.names(queue);
    return this.run(names, () => this.topology.ensure(names), handler, options);
  }

  async publishEvent(topic: string, event: Envelope): Promise<void> {
    const exchange = topicExchange(this.config.POLYQUEUE_PREFIX, topic);
    await this.topology.ensureExchange(exchange);
    const body = Buffer.from(encodeEnvelope(event), 'utf8');
    await this.publisher.publish([
      {
        exchange,
        routingKey: '',
        body,
        options: { ...baseProperties(event.id, Date.now()), headers: recordAttempt({}, event.attempt) },
      },
    ]);
  }

  subscribe(topic: string, group: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const exchange = topicExchange(this.config.POLYQUEUE_PREFIX, topic);
    const names = groupQueueNames(this.config.POLYQUEUE_PREFIX, topic, group);
    return this.run(names, () => this.topology.ensureGroup(exchange, names), handler, options);
  }

  async stats(queue: string): Promise<QueueStats> {
    const names = this.names(queue);
    await this.topology.ensure(names);
    return this.connection.withChannel(async (channel) => {
      const count = async (name: string) => (await channel.checkQueue(name)).messageCount;
      const ready = await count(names.work);
      const dead = await count(names.dead);
      let delayed = 0;
      for (const tier of names.tiers) delayed += await count(tier);
      return { ready, inFlight: this.inFlight.get(names.work)?.count ?? 0, delayed, dead };
    });
  }

  deadLetters(queue: string): DeadLetterStore {
    const names = this.names(queue);
    return createDeadLetterStore(this.connection, names, () => this.topology.ensure(names));
  }

  async ping(): Promise<void> {
    if (!this.connection.connected)
      throw new Error(`RabbitMQ at ${this.connection.where} is not connected (reconnecting)`);
    await this.connection.withChannel(async () => {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.consumers].map((consumer) => consumer.stop()));
    await this.publisher.close();
    await this.connection.close();
  }

  private names(queue: string): QueueNames {
    return queueNames(this.config.POLYQUEUE_PREFIX, queue);
  }

  private inFlightOf(queue: string): { count: number } {
    let counter = this.inFlight.get(queue);
    if (!counter) {
      counter = { count: 0 };
      this.inFlight.set(queue, counter);
    }
    return counter;
  }

  private async run(
    names: QueueNames,
    prepare: () => Promise<void>,
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<void> {
    if (this.closed) throw new Error('the RabbitMQ broker was closed');
    const consumer = runConsumer({
      connection: this.connection,
      names,
      prepare,
      handler,
      options,
      logger: this.logger,
      reconnectMaxMs: this.config.AMQP_RECONNECT_MAX_MS,
      prefetch: this.config.AMQP_PREFETCH,
      inFlight: this.inFlightOf(names.work),
      forgetTopology: () => this.topology.forget(names),
    });
    this.consumers.add(consumer);
    try {
      await consumer.finished;
    } finally {
      this.consumers.delete(consumer);
    }
  }
}
