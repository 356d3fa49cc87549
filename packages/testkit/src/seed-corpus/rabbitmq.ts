/** The article's RabbitMQ producer (第3部): pika's basic_publish after a durable queue_declare. */
import { required, type SeedExample, type SeedTarget, seedQueueName, USER } from './types';

// Python's json.dumps writes ", " and ": " between items: these bodies are its output, byte for byte.

/** 第3部 RabbitMQ, printed and derived. */
export const RABBITMQ_EXAMPLES: readonly SeedExample[] = [
  {
    id: 'python-pika-publish',
    where: '第3部 RabbitMQ / Pythonでの実装',
    article: `producer.publish("send_email", {"to": "user@example.com"})  # basic_publish(exchange='', routing_key='job_queue', body=json.dumps(...), delivery_mode=2)`,
    articleQueue: 'job_queue',
    brokers: ['rabbitmq'],
    write: {
      kind: 'amqp',
      body: '{"type": "send_email", "payload": {"to": "user@example.com"}}',
      persistent: true,
      declare: { durable: true },
    },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker: "RabbitMQConsumer.process_job prints payload['to']",
  },
  {
    id: 'python-pika-publish-without-to',
    where: '第3部 RabbitMQ / Pythonでの実装',
    article: `producer.publish("send_email", {"subject": "Hello"})`,
    articleQueue: 'job_queue',
    brokers: ['rabbitmq'],
    write: {
      kind: 'amqp',
      body: '{"type": "send_email", "payload": {"subject": "Hello"}}',
      persistent: true,
      declare: { durable: true },
    },
    expect: { deadLetter: /^invalid payload: to: / },
    articleWorker: "RabbitMQConsumer.process_job: KeyError 'to' (nack with requeue, so redelivered forever)",
    derived: 'the payload has no "to"',
  },
];

export async function publishAmqp(url: string, queue: string, body: string): Promise<void> {
  const amqp = (await import('amqplib')).default;
  const connection = await amqp.connect(url);
  try {
    // A confirm channel only so the test knows the broker has it; the message is pika's.
    const channel = await connection.createConfirmChannel();
    channel.publish('', queue, Buffer.from(body, 'utf8'), { persistent: true, mandatory: true });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/**
 * The article's RabbitMQ producer opens with `queue_declare(queue='job_queue', durable=True)`:
 * a declaration with no arguments. Resolves with RabbitMQ's refusal (the error's message) or
 * undefined when it accepted the declaration.
 */
export async function rabbitmqArticleDeclare(target: SeedTarget): Promise<string | undefined> {
  const amqp = (await import('amqplib')).default;
  const name = seedQueueName('rabbitmq', target.env.POLYQUEUE_PREFIX ?? 'polyqueue', target.queue);
  const connection = await amqp.connect(required(target.env, 'AMQP_URL'));
  connection.on('error', () => {}); // a refused declare closes the channel, not the connection
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    try {
      await channel.assertQueue(name, { durable: true });
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  } finally {
    await connection.close();
  }
}

/** Deletes the queues named `<prefix>.*` (listed by rabbitmqctl: AMQP cannot list queues). */
export async function removeRabbitmqQueues(url: string, prefix: string): Promise<void> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout } = await promisify(execFile)(
    'rabbitmqctl',
    ['list_queues', '--quiet', '--no-table-headers', 'name'],
    { timeout: 60_000 },
  );
  const names = stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((n) => n.startsWith(`${prefix}.`));
  const amqp = (await import('amqplib')).default;
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const n of names) await channel.deleteQueue(n);
  } finally {
    await connection.close();
  }
}
