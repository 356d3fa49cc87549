/**
 * kafka, best raw loop: the fastest at-least-once producer and consumer kafkajs allows on a
 * topic of KAFKA_PARTITIONS (default 3) partitions, as the driver creates.
 *
 *   enqueue  sendBatch of 1,000 messages per request with acks=-1 (all in-sync replicas),
 *            4 requests in flight
 *   process  eachBatch: every message of the fetched batch handled at once, then one
 *            commitOffsets per batch (the offset after its last message); one eachBatch per
 *            partition at a time (partitionsConsumedConcurrently = partitions)
 *
 * Why it stays correct: a partition's offset is committed only after every message before it
 * was handled, so a consumer that dies resumes from the last commit and redelivers what it had
 * not finished. Against the driver it gives up handing out a slow batch's messages while
 * others wait (a slow message holds its whole partition's batch here).
 */
import { randomUUID } from 'node:crypto';
import kafkajs, { type Consumer } from 'kafkajs';
import { perSecond, type Rates } from '../measure';
import { bodyChunks, windowed } from './best-loops';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';

const { Kafka, logLevel, Partitioners } = kafkajs;

const SEND_BATCH = 1_000;
const SENDS_IN_FLIGHT = 4;

export async function bestKafka(options: BaselineOptions): Promise<Rates> {
  const brokers = (options.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
  const partitions = Number(options.env.KAFKA_PARTITIONS ?? 3);
  const kafka = new Kafka({
    clientId: 'polyqueue-best-bench',
    brokers,
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 8 },
    connectionTimeout: 3_000,
  });
  const topic = `best-bench-${randomUUID()}`;
  const admin = kafka.admin();
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  let consumer: Consumer | undefined;
  try {
    const chunks = bodyChunks(options.jobs, SEND_BATCH);
    const t0 = performance.now();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: partitions, replicationFactor: -1 }],
    });
    await producer.connect();
    await windowed(chunks, SENDS_IN_FLIGHT, (bodies) =>
      producer.sendBatch({
        topicMessages: [{ topic, messages: bodies.map((value) => ({ value })) }],
        acks: -1,
      }),
    );
    const enqueuePerSec = perSecond(options.jobs, t0);

    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const c = kafka.consumer({
      groupId: topic,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      maxWaitTimeInMs: 3_000,
      allowAutoTopicCreation: false,
    });
    consumer = c;
    // Timed from the group join, as the other Kafka rows: joining takes seconds.
    let t1 = performance.now();
    c.on(c.events.GROUP_JOIN, () => {
      t1 = performance.now();
    });
    await c.connect();
    await c.subscribe({ topics: [topic], fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: partitions,
      eachBatch: async ({ batch, resolveOffset }) => {
        if (batch.messages.length === 0) return;
        await Promise.all(batch.messages.map((m) => rawHandler(JSON.parse(m.value?.toString() ?? ''))));
        const last = batch.lastOffset();
        resolveOffset(last);
        await c.commitOffsets([{ topic, partition: batch.partition, offset: String(Number(last) + 1) }]);
        done += batch.messages.length;
        if (done >= options.jobs) finish();
      },
    });
    await finished;
    const processPerSec = perSecond(options.jobs, t1);
    return { enqueuePerSec, processPerSec };
  } finally {
    await consumer?.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.deleteGroups([topic]).catch(() => {});
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}
