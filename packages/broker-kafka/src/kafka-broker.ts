/**
 * Kafka driver (kafkajs 2.x; tested against Apache Kafka 3.9 in KRaft mode).
 *
 * Guarantees: at-least-once. A queue Q is the topic `polyqueue.Q`, its workers one consumer group
 * (`polyqueue.Q`). An offset is committed only after the handler's outcome, per partition up to
 * the highest offset below which everything is settled, so a worker killed mid-job has its
 * partitions reassigned (after the session timeout) and the job runs again elsewhere. ack(),
 * retry() and deadLetter() do not wait for that commit (commits are coalesced per partition,
 * partition-worker.ts): a crash before it lands also redelivers jobs whose outcome was already
 * recorded, which the runtime's idempotency keys turn into no-ops. A drain commits first.
 * Ack durability is therefore 'eventually' (capabilities.ackDurable).
 *
 * Native: durable publish (acks=all), partitions and consumer groups, per-key ordering (the
 * job's key is the message key; same key -> same partition, handled in order), pub/sub (one
 * consumer group per subscriber group on `polyqueue.events.T`), redelivery after a crash.
 * Emulated: delayed delivery and retry(delay) through the retry topic `polyqueue.Q.retry` and a
 * mover that republishes due messages (delay-mover.ts); dead letters in `polyqueue.Q.dead`
 * with list / redrive / purge built on DeleteRecords (dead-letters.ts).
 * Not supported: priority (ignored), lease extension (a consumer holds its partitions while it
 * heartbeats; extend() is a no-op).
 *
 * Connection: KAFKA_BROKERS=host:port[,host:port...] (default 127.0.0.1:9092).
 * Options (environment): KAFKA_CLIENT_ID, KAFKA_PARTITIONS (of created topics, default 3),
 * KAFKA_REPLICATION_FACTOR, KAFKA_SESSION_TIMEOUT_MS, KAFKA_HEARTBEAT_INTERVAL_MS,
 * KAFKA_REBALANCE_TIMEOUT_MS, KAFKA_RETENTION_MS, POLYQUEUE_PREFIX. See docs/brokers/kafka.md.
 */
import {
  type Broker,
  type BrokerAdmin,
  type BrokerEvents,
  type Capabilities,
  type ConsumeOptions,
  type DeadLetterStore,
  type DeliveryHandler,
  type Envelope,
  encodeEnvelope,
  type Logger,
  type OutgoingMessage,
  type QueueStats,
} from '@polyqueue/core';
import kafkajs, {
  type Kafka,
  type Message,
  type PartitionMetadata,
  type Producer,
  type TopicMessages,
} from 'kafkajs';
import {
  AdminClient,
  committedOffsets,
  createKafka,
  groupLag,
  HEADER,
  LazyClient,
  retryAdminRead,
  sendPerPartition,
  TopicRegistry,
  type TopicSpec,
  topicSize,
  watermarks,
} from './client';
import { eventTopic, type KafkaConfig, type QueueTopics, queueTopics, subscriberGroup } from './config';
import { createDeadLetterStore } from './dead-letters';
import { DelayMover } from './delay-mover';
import { EventDelivery, QueueDelivery } from './deliveries';
import { PartitionWorker } from './partition-worker';
import type { SessionSettings } from './supervised-consumer';

const { Partitioners } = kafkajs;

export const KAFKA_CAPABILITIES: Capabilities = {
  delayedDelivery: 'emulated',
  priority: 'none',
  redeliveryAfterCrash: 'connection',
  ordering: 'per-key',
  pubsub: 'native',
  leaseExtension: false,
  delivery: 'at-least-once',
  // ack() marks the offset settled; the commit that records it is coalesced and lands later.
  ackDurable: 'eventually',
  crossProcess: true,
};

const FOREVER = -1;

export class KafkaBroker implements Broker, BrokerEvents, BrokerAdmin {
  readonly name = 'kafka';
  readonly capabilities = KAFKA_CAPABILITIES;
  private readonly kafka: Kafka;
  private readonly topics: TopicRegistry;
  private readonly session: SessionSettings;
  private readonly producerClient: LazyClient<Producer>;
  /** Two admin clients, so that topic-metadata reads never empty the offset reads' cache. */
  private readonly topicsAdmin: AdminClient;
  private readonly offsetsAdmin: AdminClient;
  /** Running workers per queue, for QueueStats.inFlight. */
  private readonly workers = new Map<string, Set<PartitionWorker>>();
  private readonly partitionLists = new Map<string, Promise<PartitionMetadata[]>>();
  /** Aborts every consume/subscribe still running at close(). */
  private readonly closing = new AbortController();
  private readonly active = new Set<Promise<void>>();

  constructor(
    private readonly config: KafkaConfig,
    private readonly logger: Logger,
  ) {
    this.kafka = createKafka(config, logger);
    this.producerClient = new LazyClient(() =>
      this.kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
        retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 10 },
      }),
    );
    this.topicsAdmin = new AdminClient(this.kafka);
    this.offsetsAdmin = new AdminClient(this.kafka);
    this.topics = new TopicRegistry(() => this.topicsAdmin.get(), config.KAFKA_REPLICATION_FACTOR);
    this.session = {
      sessionTimeout: config.KAFKA_SESSION_TIMEOUT_MS,
      heartbeatInterval: config.KAFKA_HEARTBEAT_INTERVAL_MS,
      rebalanceTimeout: config.KAFKA_REBALANCE_TIMEOUT_MS,
    };
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const names = await this.ensureQueue(queue);
    const now = Date.now();
    const ready: Message[] = [];
    const delayed: Message[] = [];
    for (const message of messages) {
      const out: Message = { value: encodeEnvelope(message.envelope), headers: {} };
      if (message.key !== undefined) out.key = message.key;
      if (message.delayMs !== undefined && message.delayMs > 0) {
        out.headers = { [HEADER.dueAt]: String(now + message.delayMs) };
        delayed.push(out);
      } else {
        ready.push(out);
      }
    }
    const topicMessages: TopicMessages[] = [];
    if (ready.length > 0) topicMessages.push({ topic: names.main, messages: ready });
    if (delayed.length > 0) topicMessages.push({ topic: names.retry, messages: delayed });
    await sendPerPartition(await this.producer(), (topic) => this.partitionsOf(topic), topicMessages);
  }

  /** A topic's partitions, read once per process (for sendPerPartition's partitioner). */
  private partitionsOf(topic: string): Promise<PartitionMetadata[]> {
    let known = this.partitionLists.get(topic);
    if (!known) {
      known = this.topicsAdmin.get().then(async (admin) => {
        const { topics } = await retryAdminRead(() => admin.fetchTopicMetadata({ topics: [topic] }));
        const partitions = topics[0]?.partitions ?? [];
        if (partitions.length === 0) throw new Error(`kafka: no partitions known for ${topic}`);
        return partitions;
      });
      const cached = known;
      this.partitionLists.set(topic, cached);
      cached.catch(() => {
        if (this.partitionLists.get(topic) === cached) this.partitionLists.delete(topic);
      });
    }
    return known;
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const names = await this.ensureQueue(queue);
    const producer = () => this.producer();
    const worker = new PartitionWorker({
      kafka: this.kafka,
      groupId: names.group,
      topic: names.main,
      fromBeginning: true,
      concurrency: options.concurrency,
      session: this.session,
      logger: this.logger.child({ queue }),
      process: (record, _attempt, control) => handler(new QueueDelivery(producer, names, record, control)),
      ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {}),
    });
    const mover = new DelayMover({
      kafka: this.kafka,
      producer: () => this.producer(),
      retryTopic: names.retry,
      mainTopic: names.main,
      groupId: names.retryGroup,
      session: this.session,
      logger: this.logger.child({ queue, component: 'delay-mover' }),
    });
    let workers = this.workers.get(queue);
    if (!workers) {
      workers = new Set();
      this.workers.set(queue, workers);
    }
    workers.add(worker);
    try {
      await this.runUntilAborted(
        options,
        [worker.joined, mover.joined],
        async () => {
          await Promise.all([worker.start(), mover.start()]);
        },
        async () => {
          await Promise.all([worker.drain(), mover.stop()]);
        },
      );
    } finally {
      workers.delete(worker);
    }
  }

  async publishEvent(topic: string, event: Envelope): Promise<void> {
    const name = eventTopic(this.config.POLYQUEUE_PREFIX, topic);
    await this.topics.ensure([
      { topic: name, partitions: this.config.KAFKA_PARTITIONS, retentionMs: this.config.KAFKA_RETENTION_MS },
    ]);
    await (await this.producer()).send({
      topic: name,
      acks: -1,
      messages: [{ value: encodeEnvelope(event) }],
    });
  }

  async subscribe(
    topic: string,
    group: string,
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<void> {
    const prefix = this.config.POLYQUEUE_PREFIX;
    const name = eventTopic(prefix, topic);
    const names = subscriberGroup(prefix, topic, group);
    await this.topics.ensure([
      { topic: name, partitions: this.config.KAFKA_PARTITIONS, retentionMs: this.config.KAFKA_RETENTION_MS },
      { topic: names.dead, partitions: 1, retentionMs: FOREVER },
    ]);
    const startAt = await this.endsWithoutCommit(names.group, name);
    const producer = () => this.producer();
    const worker = new PartitionWorker({
      kafka: this.kafka,
      groupId: names.group,
      topic: name,
      fromBeginning: false,
      startAt,
      concurrency: options.concurrency,
      session: this.session,
      logger: this.logger.child({ topic, group }),
      process: (record, attempt, control) =>
        handler(new EventDelivery(producer, names.dead, record, attempt, control)),
      ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {}),
    });
    await this.runUntilAborted(
      options,
      [worker.joined],
      () => worker.start(),
      () => worker.drain(),
    );
  }

  async stats(queue: string): Promise<QueueStats> {
    const names = await this.ensureQueue(queue);
    const admin = await this.offsetsAdmin.get();
    // In flight as seen by this process: other processes' running jobs count as ready here.
    let inFlight = 0;
    const handedOut = new Map<number, number>();
    for (const worker of this.workers.get(queue) ?? []) {
      inFlight += Math.max(0, worker.unsettled);
      for (const [partition, next] of worker.positions()) {
        handedOut.set(partition, Math.max(next, handedOut.get(partition) ?? -1));
      }
    }
    const [ready, delayed, dead] = await Promise.all([
      groupLag(admin, names.group, names.main, handedOut),
      groupLag(admin, names.retryGroup, names.retry),
      topicSize(admin, names.dead),
    ]);
    return { ready, inFlight, delayed, dead };
  }

  deadLetters(queue: string): DeadLetterStore {
    const names = queueTopics(this.config.POLYQUEUE_PREFIX, queue);
    return createDeadLetterStore({
      kafka: this.kafka,
      admin: () => this.offsetsAdmin.get(),
      producer: () => this.producer(),
      ensureTopics: async () => {
        await this.ensureQueue(queue);
      },
      deadTopic: names.dead,
      mainTopic: names.main,
      logger: this.logger,
    });
  }

  async ping(): Promise<void> {
    const admin = await this.topicsAdmin.get();
    await admin.describeCluster();
  }

  async close(): Promise<void> {
    this.closing.abort(new Error('broker closed'));
    await Promise.allSettled([...this.active]);
    await Promise.allSettled([
      this.producerClient.disconnect(),
      this.topicsAdmin.disconnect(),
      this.offsetsAdmin.disconnect(),
    ]);
  }

  /**
   * A new subscriber group starts at the end of the topic as it is now, before the group joins:
   * with auto.offset.reset=latest alone, an event sent between onReady and the first fetch would
   * be skipped. (admin.setOffsets would do it too, but it joins the group itself: ~5 s.)
   */
  private async endsWithoutCommit(groupId: string, topic: string): Promise<Map<number, number>> {
    const admin = await this.offsetsAdmin.get();
    const [committed, ends] = await Promise.all([
      committedOffsets(admin, groupId, topic),
      watermarks(admin, topic),
    ]);
    const hasCommit = new Set(
      [...committed].filter(([, offset]) => offset >= 0).map(([partition]) => partition),
    );
    return new Map(
      ends.filter((end) => !hasCommit.has(end.partition)).map((end) => [end.partition, end.high]),
    );
  }

  private async runUntilAborted(
    options: ConsumeOptions,
    joined: Promise<void>[],
    start: () => Promise<void>,
    drain: () => Promise<void>,
  ): Promise<void> {
    const signal = AbortSignal.any([options.signal, this.closing.signal]);
    const stopped = new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    const run = (async () => {
      await start();
      await Promise.race([Promise.all(joined).then(() => options.onReady?.()), stopped]);
      await stopped;
      await drain();
    })();
    this.active.add(run);
    try {
      await run;
    } finally {
      this.active.delete(run);
    }
  }

  private ensureQueue(queue: string): Promise<QueueTopics> {
    const names = queueTopics(this.config.POLYQUEUE_PREFIX, queue);
    const specs: TopicSpec[] = [
      {
        topic: names.main,
        partitions: this.config.KAFKA_PARTITIONS,
        retentionMs: this.config.KAFKA_RETENTION_MS,
      },
      {
        topic: names.retry,
        partitions: this.config.KAFKA_PARTITIONS,
        retentionMs: this.config.KAFKA_RETENTION_MS,
      },
      { topic: names.dead, partitions: 1, retentionMs: FOREVER },
    ];
    return this.topics.ensure(specs).then(() => names);
  }

  private producer(): Promise<Producer> {
    return this.producerClient.get();
  }
}
