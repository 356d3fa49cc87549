/**
 * A 3-broker Kafka (scripts/services/kafka/cluster.sh: KRaft, replication factor 3,
 * min.insync.replicas=2; the driver publishes with acks=all) loses one broker to SIGKILL under
 * load. Counted: every job whose publish resolved is handled (0 lost), and nothing is left
 * behind once the producer is done (0 stuck). Run by `npm run test:cluster`, not `npm test`:
 * the test starts the cluster and stops it when it ends.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger, parseEnv } from '@polyqueue/core';
import { killUnderLoad, nothingLeft } from '@polyqueue/testkit';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBroker, kafkaEnvSchema } from '../../src/index';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../../../scripts/services/kafka/cluster.sh', import.meta.url));
const cluster = (...args: string[]) => run('bash', [SCRIPT, ...args], { timeout: 300_000 });

const JOBS = 3_000;
const BATCH = 50;
const PARTITIONS = 6;
const SESSION_TIMEOUT_MS = 6_000;
const prefix = `pqcluster${process.pid}`;
const queue = 'load';
const topic = `${prefix}.${queue}`;

let brokers = '';
let broker: KafkaBroker | undefined;

beforeAll(async () => {
  try {
    await cluster('start');
    await cluster('wait');
  } catch (error) {
    throw new Error(
      `cannot start the 3-broker Kafka (scripts/services/kafka/cluster.sh start && cluster.sh wait): ${(error as Error).message}`,
    );
  }
  brokers = (await cluster('brokers')).stdout.trim();
}, 300_000);

afterAll(async () => {
  await broker?.close().catch(() => {});
  // This file started the cluster: stop it, whatever happened.
  await cluster('stop');
}, 180_000);

/** The broker id leading partition 0 of the topic: the node whose death forces an election. */
async function leaderOfPartitionZero(): Promise<number> {
  const admin = new kafkajs.Kafka({
    brokers: brokers.split(','),
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const partition = topics[0]?.partitions.find((p) => p.partitionId === 0);
    if (!partition) throw new Error(`no metadata for ${topic}`);
    expect(partition.replicas, 'replicas of partition 0').toHaveLength(3);
    return partition.leader;
  } finally {
    await admin.disconnect();
  }
}

/** Every envelope id in the topic, read from the beginning up to the high watermarks. */
async function idsInTopic(): Promise<Set<string>> {
  const kafka = new kafkajs.Kafka({ brokers: brokers.split(','), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  await admin.disconnect();
  const ids = new Set<string>();
  const done = new Set<number>([...ends].filter(([, high]) => high === 0).map(([p]) => p));
  const consumer = kafka.consumer({ groupId: `${prefix}.audit`, sessionTimeout: SESSION_TIMEOUT_MS });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('reading the topic back took over 60 s')), 60_000);
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const id = JSON.parse(message.value?.toString() ?? '{}').id;
        if (typeof id === 'string') ids.add(id);
        if (Number(message.offset) + 1 >= (ends.get(partition) ?? 0)) done.add(partition);
        if (done.size === ends.size) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return ids;
}

describe('Kafka, 3 brokers: one broker SIGKILLed under load', () => {
  it('loses no acknowledged job and leaves none stuck', async (ctx) => {
    const started = Date.now();
    const config = parseEnv(kafkaEnvSchema, {
      KAFKA_BROKERS: brokers,
      POLYQUEUE_PREFIX: prefix,
      KAFKA_PARTITIONS: String(PARTITIONS),
      KAFKA_REPLICATION_FACTOR: '3',
      KAFKA_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
      KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
      KAFKA_REBALANCE_TIMEOUT_MS: '15000',
    });
    // KAFKA_TEST_LOG_LEVEL=info shows the driver's view of the failover.
    broker = new KafkaBroker(
      config,
      createLogger('kafka-cluster-test', process.env.KAFKA_TEST_LOG_LEVEL ?? 'silent'),
    );
    let killedNode = 0;
    const load = await killUnderLoad({
      broker,
      queue,
      jobs: JOBS,
      batch: BATCH,
      message: (envelope) => ({ envelope, key: envelope.id }),
      kill: async () => {
        killedNode = await leaderOfPartitionZero();
        await cluster('kill', String(killedNode));
      },
    });
    const killedAt = killedNode;
    expect(killedAt, 'a broker was killed').toBeGreaterThan(0);

    // 0 lost: every job whose publish resolved is handled and acked.
    const { published, acked, lost, neverDelivered, failedAcks, publishRetries, timedOut } = load;
    // Where did they go: read the whole topic with a fresh group. In the log but never
    // delivered is the consumer's fault; missing from the log, the producer's.
    const inLog = neverDelivered.length > 0 ? await idsInTopic() : new Set<string>();
    const missingFromLog = neverDelivered.filter((id) => !inLog.has(id)).length;
    expect(
      lost,
      `${timedOut ? `${timedOut.message}: ` : ''}${lost.length} published jobs not acked ` +
        `(${neverDelivered.length} never delivered, of which ${missingFromLog} are not in the topic at all ` +
        `although their publish resolved; ${lost.length - neverDelivered.length} delivered but their ack ` +
        `did not complete); ${failedAcks} acks failed, ${publishRetries} publish retries, node ${killedNode} killed`,
    ).toEqual([]);
    // 0 stuck: nothing ready or in flight once everything is handled.
    const stats = await nothingLeft(() => broker!.stats(queue));
    await ctx.annotate(
      `node ${killedAt} of 3 SIGKILLed after ${JOBS / 3} of ${JOBS} publishes: ${published.size} published, ` +
        `${acked.size} handled, 0 lost, 0 stuck (ready ${stats.ready}, in flight ${stats.inFlight}); ` +
        `${load.handled - acked.size} redeliveries, ${failedAcks} failed acks, ${publishRetries} publish retries; ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    await load.stop();

    // The killed broker comes back and catches up (no partition under-replicated).
    await cluster('start-node', String(killedAt));
    await cluster('wait');
  }, 420_000);
});
