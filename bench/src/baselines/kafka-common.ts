/**
 * What the kafka baselines (kafka-raw.ts, kafka-best.ts) share around their loops: the kafkajs
 * client with the driver's settings (client.ts createKafka()), a fresh topic and group per run,
 * the group member timed from its join, and the clean-up. Each baseline keeps its own sends and
 * its own eachBatch.
 */
import { randomUUID } from 'node:crypto';
import kafkajs, { type Admin, type Consumer, type ConsumerConfig, type Producer } from 'kafkajs';
import type { BaselineOptions } from './index';

const { Kafka, logLevel, Partitioners } = kafkajs;

export interface KafkaRun {
  topic: string;
  /** KAFKA_PARTITIONS (default 3), as the driver creates its topics. */
  partitions: number;
  admin: Admin;
  producer: Producer;
  /** Creates the topic (with `configEntries` if given) and connects the producer. */
  open(configEntries?: { name: string; value: string }[]): Promise<void>;
  /**
   * Joins the run's group from the topic's beginning with the driver's session settings plus
   * `config`; `startedAt()` is the time of the latest group join, as joining takes seconds and
   * would otherwise dominate a run of a few thousand jobs.
   */
  join(config?: Partial<ConsumerConfig>): Promise<{ consumer: Consumer; startedAt: () => number }>;
  /** Disconnects everything and deletes the run's group and topic; never throws. */
  close(): Promise<void>;
}

export function kafkaRun(options: BaselineOptions, name: 'raw' | 'best'): KafkaRun {
  const brokers = (options.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
  const partitions = Number(options.env.KAFKA_PARTITIONS ?? 3);
  const kafka = new Kafka({
    clientId: `polyqueue-${name}-bench`,
    brokers,
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 8 },
    connectionTimeout: 3_000,
  });
  const topic = `${name}-bench-${randomUUID()}`;
  const admin = kafka.admin();
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  let consumer: Consumer | undefined;
  return {
    topic,
    partitions,
    admin,
    producer,
    async open(configEntries) {
      await admin.connect();
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic,
            numPartitions: partitions,
            replicationFactor: -1,
            ...(configEntries && { configEntries }),
          },
        ],
      });
      await producer.connect();
    },
    async join(config = {}) {
      const c = kafka.consumer({
        groupId: topic,
        sessionTimeout: 30_000,
        heartbeatInterval: 3_000,
        maxWaitTimeInMs: 3_000,
        allowAutoTopicCreation: false,
        ...config,
      });
      consumer = c;
      let t1 = performance.now();
      c.on(c.events.GROUP_JOIN, () => {
        t1 = performance.now();
      });
      await c.connect();
      await c.subscribe({ topics: [topic], fromBeginning: true });
      return { consumer: c, startedAt: () => t1 };
    },
    async close() {
      await consumer?.disconnect().catch(() => {});
      await producer.disconnect().catch(() => {});
      await admin.deleteGroups([topic]).catch(() => {});
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect().catch(() => {});
    },
  };
}
