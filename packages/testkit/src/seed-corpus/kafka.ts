/** The article's Kafka producer (第4部): kafka-python's send with a JSON value serializer. */
import { type SeedExample, USER } from './types';

// Python's json.dumps writes ", " and ": " between items: these bodies are its output, byte for byte.

/** 第4部 Apache Kafka, printed and derived. */
export const KAFKA_EXAMPLES: readonly SeedExample[] = [
  {
    id: 'kafka-python-send',
    where: '第4部 Apache Kafka / Pythonでの実装',
    article: `producer.send('job_topic', {"type": "send_email", "payload": {"to": "user@example.com"}})  # value_serializer=json.dumps`,
    articleQueue: 'job_topic',
    brokers: ['kafka'],
    write: { kind: 'kafka', value: '{"type": "send_email", "payload": {"to": "user@example.com"}}' },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker: "the consumer loop prints job['type']",
  },
  {
    id: 'kafka-python-send-not-json',
    where: '第4部 Apache Kafka / Pythonでの実装',
    article: `producer.send('job_topic', ...)  # a value that is not JSON`,
    articleQueue: 'job_topic',
    brokers: ['kafka'],
    write: { kind: 'kafka', value: 'send_email user@example.com' },
    expect: { deadLetter: /^malformed message: body is not JSON/ },
    articleWorker: 'KafkaConsumer value_deserializer json.loads raises',
    derived:
      'the value is not JSON (the printed consumer only reads job["type"], so a payload without "to" passes there)',
  },
];

async function kafka(brokers: string) {
  const { Kafka, logLevel, Partitioners } = (await import('kafkajs')).default;
  return {
    client: new Kafka({ clientId: 'seed-corpus', brokers: brokers.split(','), logLevel: logLevel.NOTHING }),
    Partitioners,
  };
}

export async function sendKafka(brokers: string, topic: string, value: string): Promise<void> {
  const { client, Partitioners } = await kafka(brokers);
  const producer = client.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  try {
    // kafka-python's defaults: no key, acks=1.
    await producer.send({ topic, acks: 1, messages: [{ value }] });
  } finally {
    await producer.disconnect();
  }
}

/** Deletes the topics and consumer groups named `<prefix>.*`. */
export async function removeKafkaTopics(brokers: string, prefix: string): Promise<void> {
  const admin = (await kafka(brokers)).client.admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.startsWith(`${prefix}.`));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => {});
  } finally {
    await admin.disconnect();
  }
}
