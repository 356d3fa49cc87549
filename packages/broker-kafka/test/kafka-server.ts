import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import kafkajs, { type Kafka } from 'kafkajs';

const run = promisify(execFile);
const { Kafka: KafkaClient, logLevel, Partitioners } = kafkajs;

/** The local broker the tests use; CI and developers start it the same way. */
export const KAFKA_BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
const SCRIPT = fileURLToPath(new URL('../../../scripts/services/kafka/kafka.sh', import.meta.url));
export const SERVER_HINT = `Kafka at ${KAFKA_BROKERS} (start: scripts/services/kafka/start.sh && scripts/services/kafka/wait.sh)`;

export function testKafka(): Kafka {
  return new KafkaClient({
    clientId: 'polyqueue-test',
    brokers: KAFKA_BROKERS.split(','),
    logLevel: logLevel.NOTHING,
  });
}

/** Stops the broker (SIGTERM, waits for exit) and starts it again; resolves when it answers metadata. */
export async function restartKafka(): Promise<void> {
  try {
    await run(SCRIPT, ['stop'], { timeout: 120_000 });
  } finally {
    await ensureKafkaRunning();
  }
}

export async function ensureKafkaRunning(): Promise<void> {
  await run(SCRIPT, ['start'], { timeout: 300_000 });
  await run(SCRIPT, ['wait'], { timeout: 150_000 });
}

/** Sends a body as a producer in another language would: no key, no headers. */
export async function publishRaw(topic: string, body: string): Promise<void> {
  const producer = testKafka().producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: [{ value: body }] });
  } finally {
    await producer.disconnect();
  }
}

/** Deletes the topics and consumer groups whose names start with prefix, so runs do not pile up. */
export async function deleteWithPrefix(prefix: string): Promise<number> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((name) => name.startsWith(`${prefix}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((id) => id.startsWith(`${prefix}.`));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => {});
    return topics.length;
  } finally {
    await admin.disconnect();
  }
}
