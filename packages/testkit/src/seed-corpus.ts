/**
 * The golden corpus of the seed article's producers (message-queue-guide.ja.txt, the Japanese
 * guide polyqueue grew from, kept in shared/seed/ beside this repository). Every producer it prints, as
 * the bytes it puts on the wire, with the article's queue names mapped to polyqueue's, and a
 * writer that sends each one with the broker's own raw client the way the article does: a plain
 * SQL INSERT, RPUSH, XADD, basic_publish, a Kafka send, SQS SendMessage.
 *
 * The corpus is data about producers only; what a worker must make of each example is in
 * `expect`. The test that runs it against every server lives with the email worker
 * (apps/email-worker/test/seed-corpus.test.ts), so the testkit stays free of app code.
 *
 * Not in the corpus, with why:
 * - ReliableQueue.enqueue(message) (方式2) is the same RPUSH as 方式1 with no message of its own;
 *   the 方式1 examples run on the reliable driver too.
 * - enqueue_with_priority (`RPUSH jobs:<priority>`) and enqueue_delayed (`ZADD delayed_jobs`)
 *   print no message and write keys of their own demo layout, not a job queue's.
 * - The RabbitMQ producer's `queue_declare(queue='job_queue', durable=True)` is a declaration, not
 *   a message: it is `declare` on its example, and a test pins what RabbitMQ answers to it.
 * - Consumers, monitoring commands and the DLQ reader send nothing.
 *
 * Each client library is imported when its broker is written to, so importing the testkit does
 * not load six clients.
 */

/** The brokers an article producer reaches: each form runs on every driver that reads it. */
export type SeedBroker =
  | 'mysql'
  | 'sqlite'
  | 'redis-list'
  | 'redis-reliable'
  | 'redis-streams'
  | 'rabbitmq'
  | 'kafka'
  | 'sqs';

export const SEED_BROKERS: readonly SeedBroker[] = [
  'mysql',
  'sqlite',
  'redis-list',
  'redis-reliable',
  'redis-streams',
  'rabbitmq',
  'kafka',
  'sqs',
];

/** How a producer writes, in its broker's own terms. */
export type SeedWrite =
  /** SQL as the article prints it; its table name (`job_queue`) is replaced by polyqueue's. */
  | { kind: 'sql'; sql: string }
  /** `RPUSH <list> <body>`. */
  | { kind: 'rpush'; body: string }
  /** `XADD <stream> * <field> <value> ...`, the fields in the order written. */
  | { kind: 'xadd'; fields: readonly (readonly [string, string])[] }
  /**
   * pika's basic_publish(exchange='', routing_key=<queue>, body, delivery_mode=2). `declare` is
   * the queue_declare the article's producer runs first (see rabbitmqArticleDeclare).
   */
  | { kind: 'amqp'; body: string; persistent: true; declare: { durable: true } }
  /** kafka-python send(topic, value) with value_serializer json.dumps: no key, acks=1. */
  | { kind: 'kafka'; value: string }
  /** boto3 send_message(QueueUrl, MessageBody, MessageAttributes). */
  | {
      kind: 'sqs';
      body: string;
      attributes: Record<string, { DataType: 'String'; StringValue: string }>;
    };

/** What the email worker must make of an example. */
export type SeedOutcome =
  /** One email: its To, Subject and plain-text body. */
  | { delivered: { to: string; subject: string; body: string } }
  /** A dead letter whose reason matches; only where the article's own worker failed too. */
  | { deadLetter: RegExp };

export interface SeedExample {
  /** Unique in the corpus; tests name their queues after it. */
  id: string;
  /** Where the article prints it (part and heading, as in the article). */
  where: string;
  /** The producer as the article prints it. */
  article: string;
  /** The article's queue name, which the writer maps to polyqueue's `email` queue. */
  articleQueue: string;
  brokers: readonly SeedBroker[];
  write: SeedWrite;
  expect: SeedOutcome;
  /** What the article's own worker did with it. */
  articleWorker: string;
  /** Set on examples made from a printed one, to show the dead-letter path: what was changed. */
  derived?: string;
}

const USER = 'user@example.com';
const TABLE_QUEUES: readonly SeedBroker[] = ['mysql', 'sqlite'];
const LIST_QUEUES: readonly SeedBroker[] = ['redis-list', 'redis-reliable'];

// Python's json.dumps writes ", " and ": " between items: these bodies are its output, byte for byte.

export const SEED_CORPUS: readonly SeedExample[] = [
  {
    id: 'q4m-insert',
    where: '第1部 Q4M / メッセージの投入(Producer)',
    article: `INSERT INTO job_queue (job_type, payload)\nVALUES ('send_email', '{"to":"user@example.com","subject":"Welcome"}');`,
    articleQueue: 'job_queue',
    brokers: TABLE_QUEUES,
    write: {
      kind: 'sql',
      sql: `INSERT INTO job_queue (job_type, payload)\nVALUES ('send_email', '{"to":"user@example.com","subject":"Welcome"}');`,
    },
    expect: { delivered: { to: USER, subject: 'Welcome', body: '' } },
    articleWorker: "Q4MWorker::sendEmail: mail($payload['to'], $payload['subject'], $payload['body'] ?? '')",
  },
  {
    id: 'redis-cli-rpush',
    where: '第2部 Redis / 方式1:List / 基本操作',
    article: `RPUSH job_queue '{"type":"send_email","to":"user@example.com"}'`,
    articleQueue: 'job_queue',
    brokers: LIST_QUEUES,
    write: { kind: 'rpush', body: '{"type":"send_email","to":"user@example.com"}' },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker:
      "RedisQueueWorker.process_job reads job['payload'] (a KeyError on this flat shape); issue 18 reads flat fields as the payload",
  },
  {
    id: 'python-redis-list-enqueue',
    where: '第2部 Redis / 方式1:List / Pythonでの実装',
    article: `worker.enqueue("send_email", {"to": "user@example.com", "subject": "Hello"})  # rpush(json.dumps({"type": ..., "payload": ...}))`,
    articleQueue: 'job_queue',
    brokers: LIST_QUEUES,
    write: {
      kind: 'rpush',
      body: '{"type": "send_email", "payload": {"to": "user@example.com", "subject": "Hello"}}',
    },
    expect: { delivered: { to: USER, subject: 'Hello', body: '' } },
    articleWorker: "RedisQueueWorker.send_email prints payload['to']",
  },
  {
    id: 'redis-cli-xadd',
    where: '第2部 Redis / 方式3:Redis Streams',
    article: 'XADD job_stream * type send_email to user@example.com',
    articleQueue: 'job_stream',
    brokers: ['redis-streams'],
    write: {
      kind: 'xadd',
      fields: [
        ['type', 'send_email'],
        ['to', USER],
      ],
    },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker:
      "RedisStreamWorker.process_message reads data[b'payload'] (a KeyError on flat fields); issue 18 reads flat fields as the payload",
  },
  {
    id: 'python-redis-streams-enqueue',
    where: '第2部 Redis / 方式3:Redis Streams / Pythonでの実装',
    article: `worker.enqueue("send_email", {"to": "user@example.com"})  # xadd(stream, {"type": job_type, "payload": json.dumps(payload)})`,
    articleQueue: 'job_stream',
    brokers: ['redis-streams'],
    write: {
      kind: 'xadd',
      fields: [
        ['type', 'send_email'],
        ['payload', '{"to": "user@example.com"}'],
      ],
    },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker: "RedisStreamWorker.handle_job prints payload['to']",
  },
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
    id: 'boto3-send-message',
    where: '第5部 Amazon SQS / Pythonでの実装(boto3)',
    article: `send_message("send_email", {"to": "user@example.com"})  # sqs.send_message(QueueUrl=.../job-queue, MessageBody=json.dumps(...), MessageAttributes={'JobType': ...})`,
    articleQueue: 'job-queue',
    brokers: ['sqs'],
    write: {
      kind: 'sqs',
      body: '{"type": "send_email", "payload": {"to": "user@example.com"}}',
      attributes: { JobType: { DataType: 'String', StringValue: 'send_email' } },
    },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker: "handle_job prints job['payload']['to']",
  },

  // Derived: a printed producer sending a job the article's own worker rejects. Each must end as
  // a dead letter that says why, never as a silent loss or an endless retry.
  {
    id: 'q4m-insert-unknown-type',
    where: '第1部 Q4M / メッセージの投入(Producer)',
    article: `INSERT INTO job_queue (job_type, payload)\nVALUES ('send_sms', '{"to":"user@example.com"}');`,
    articleQueue: 'job_queue',
    brokers: TABLE_QUEUES,
    write: {
      kind: 'sql',
      sql: `INSERT INTO job_queue (job_type, payload)\nVALUES ('send_sms', '{"to":"user@example.com"}');`,
    },
    expect: { deadLetter: /^unknown job type "send_sms" on queue email/ },
    articleWorker: 'Q4MWorker::handleJob throws "Unknown job type: send_sms"',
    derived: "job_type 'send_sms' instead of 'send_email'",
  },
  {
    id: 'python-redis-list-enqueue-without-to',
    where: '第2部 Redis / 方式1:List / Pythonでの実装',
    article: `worker.enqueue("send_email", {"subject": "Hello"})`,
    articleQueue: 'job_queue',
    brokers: LIST_QUEUES,
    write: { kind: 'rpush', body: '{"type": "send_email", "payload": {"subject": "Hello"}}' },
    expect: { deadLetter: /^invalid payload: to: / },
    articleWorker: "RedisQueueWorker.send_email: KeyError 'to'",
    derived: 'the payload has no "to"',
  },
  {
    id: 'python-redis-streams-enqueue-without-to',
    where: '第2部 Redis / 方式3:Redis Streams / Pythonでの実装',
    article: `worker.enqueue("send_email", {"subject": "Hello"})`,
    articleQueue: 'job_stream',
    brokers: ['redis-streams'],
    write: {
      kind: 'xadd',
      fields: [
        ['type', 'send_email'],
        ['payload', '{"subject": "Hello"}'],
      ],
    },
    expect: { deadLetter: /^invalid payload: to: / },
    articleWorker: "RedisStreamWorker.handle_job: KeyError 'to' (left unacked, so redelivered forever)",
    derived: 'the payload has no "to"',
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
  {
    id: 'boto3-send-message-without-to',
    where: '第5部 Amazon SQS / Pythonでの実装(boto3)',
    article: `send_message("send_email", {"subject": "Hello"})`,
    articleQueue: 'job-queue',
    brokers: ['sqs'],
    write: {
      kind: 'sqs',
      body: '{"type": "send_email", "payload": {"subject": "Hello"}}',
      attributes: { JobType: { DataType: 'String', StringValue: 'send_email' } },
    },
    expect: { deadLetter: /^invalid payload: to: / },
    articleWorker: "handle_job: KeyError 'to' (back after the visibility timeout, forever)",
    derived: 'the payload has no "to"',
  },
];

/** The corpus examples a broker reads. */
export function seedExamplesFor(broker: SeedBroker): SeedExample[] {
  return SEED_CORPUS.filter((example) => example.brokers.includes(broker));
}

/**
 * Where logical queue `queue` lives on `broker` under `prefix` (docs/wire-format.md, "Default
 * names"): the name the article's `job_queue` / `job_stream` / `job_topic` / `job-queue` maps to.
 * With the default prefix, `email` is `polyqueue:email`, `polyqueue.email`, `polyqueue-email` or
 * `polyqueue_email`.
 */
export function seedQueueName(broker: SeedBroker, prefix: string, queue: string): string {
  switch (broker) {
    case 'mysql':
    case 'sqlite':
      return `${prefix}_${queue}`;
    case 'redis-list':
    case 'redis-reliable':
    case 'redis-streams':
      return `${prefix}:${queue}`;
    case 'rabbitmq':
    case 'kafka':
      return `${prefix}.${queue}`;
    case 'sqs':
      return `${prefix}-${queue}`;
  }
}

/** Where to write: the broker, its environment (the same one the worker's broker is made from), the logical queue. */
export interface SeedTarget {
  broker: SeedBroker;
  /** REDIS_URL, AMQP_URL, KAFKA_BROKERS, SQS_ENDPOINT + AWS_REGION, MYSQL_URL or SQLITE_PATH, and POLYQUEUE_PREFIX. */
  env: Readonly<Record<string, string | undefined>>;
  queue: string;
}

function required(env: SeedTarget['env'], name: string): string {
  const value = env[name];
  if (!value) throw new Error(`seed corpus: ${name} is not set in the target's env`);
  return value;
}

/** The article's SQL with its table name replaced; the article's values stay as printed. */
export function seedSql(sql: string, table: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(table)) throw new Error(`seed corpus: unsafe table name ${table}`);
  return sql.replace(/\bINSERT INTO job_queue\b/, `INSERT INTO ${table}`);
}

/**
 * Writes one example to the target with the broker's own client, as the article's producer does.
 * Resolves once the broker has it (a commit, a reply, a publisher confirm, acks from the leader).
 * The queue must exist (start the worker first): the article's producers write into a queue
 * that its workers declared.
 */
export async function writeSeedExample(example: SeedExample, target: SeedTarget): Promise<void> {
  if (!example.brokers.includes(target.broker))
    throw new Error(`seed corpus: ${example.id} is not a ${target.broker} producer`);
  const prefix = target.env.POLYQUEUE_PREFIX ?? 'polyqueue';
  const name = seedQueueName(target.broker, prefix, target.queue);
  const write = example.write;
  switch (write.kind) {
    case 'sql':
      return target.broker === 'mysql'
        ? insertMysql(required(target.env, 'MYSQL_URL'), seedSql(write.sql, name))
        : insertSqlite(required(target.env, 'SQLITE_PATH'), seedSql(write.sql, name));
    case 'rpush':
      return withRedis(required(target.env, 'REDIS_URL'), async (redis) => {
        await redis.rpush(name, write.body);
      });
    case 'xadd':
      return withRedis(required(target.env, 'REDIS_URL'), async (redis) => {
        await redis.xadd(name, '*', ...write.fields.flat());
      });
    case 'amqp':
      return publishAmqp(required(target.env, 'AMQP_URL'), name, write.body);
    case 'kafka':
      return sendKafka(required(target.env, 'KAFKA_BROKERS'), name, write.value);
    case 'sqs':
      return sendSqs(target.env, name, write.body, write.attributes);
  }
}

async function insertMysql(url: string, sql: string): Promise<void> {
  const mysql = (await import('mysql2/promise')).default;
  const connection = await mysql.createConnection({ uri: url });
  try {
    await connection.query(sql); // autocommit, as PDO's query() is
  } finally {
    await connection.end();
  }
}

async function insertSqlite(path: string, sql: string): Promise<void> {
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(path);
  try {
    db.pragma('busy_timeout = 10000');
    db.exec(sql);
  } finally {
    db.close();
  }
}

async function withRedis(url: string, use: (redis: import('ioredis').Redis) => Promise<void>): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  try {
    await use(redis);
  } finally {
    redis.disconnect();
  }
}

async function publishAmqp(url: string, queue: string, body: string): Promise<void> {
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

async function sendKafka(brokers: string, topic: string, value: string): Promise<void> {
  const { Kafka, logLevel, Partitioners } = (await import('kafkajs')).default;
  const producer = new Kafka({
    clientId: 'seed-corpus',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
  }).producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    // kafka-python's defaults: no key, acks=1.
    await producer.send({ topic, acks: 1, messages: [{ value }] });
  } finally {
    await producer.disconnect();
  }
}

async function sendSqs(
  env: SeedTarget['env'],
  queueName: string,
  body: string,
  attributes: Record<string, { DataType: 'String'; StringValue: string }>,
): Promise<void> {
  const { GetQueueUrlCommand, SendMessageCommand, SQSClient } = await import('@aws-sdk/client-sqs');
  const client = new SQSClient({
    region: env.AWS_REGION ?? 'us-east-1',
    ...(env.SQS_ENDPOINT ? { endpoint: env.SQS_ENDPOINT } : {}),
    credentials: {
      accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'x',
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'x',
    },
  });
  try {
    // The article hard-codes the queue URL; looking it up gives the same URL here.
    const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: queueName }));
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: body, MessageAttributes: attributes }));
  } finally {
    client.destroy();
  }
}

/**
 * Removes what a test made under `prefix` on the target's server (keys, tables, queues, topics),
 * so runs do not pile up. Best effort: a failure here never fails a test.
 */
export async function removeSeedQueues(target: SeedTarget): Promise<void> {
  const prefix = required(target.env, 'POLYQUEUE_PREFIX');
  try {
    switch (target.broker) {
      case 'mysql': {
        const mysql = (await import('mysql2/promise')).default;
        const connection = await mysql.createConnection({ uri: required(target.env, 'MYSQL_URL') });
        try {
          const [rows] = await connection.query('SHOW TABLES LIKE ?', [`${prefix}\\_%`]);
          for (const row of rows as Record<string, string>[])
            await connection.query(`DROP TABLE IF EXISTS \`${Object.values(row)[0]}\``);
        } finally {
          await connection.end();
        }
        return;
      }
      case 'redis-list':
      case 'redis-reliable':
      case 'redis-streams':
        return withRedis(required(target.env, 'REDIS_URL'), async (redis) => {
          for (const pattern of [`${prefix}:*`, `{${prefix}:*`]) {
            const keys = await redis.keys(pattern);
            if (keys.length > 0) await redis.del(...keys);
          }
        });
      case 'rabbitmq': {
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
        const connection = await amqp.connect(required(target.env, 'AMQP_URL'));
        try {
          const channel = await connection.createChannel();
          for (const n of names) await channel.deleteQueue(n);
        } finally {
          await connection.close();
        }
        return;
      }
      case 'kafka': {
        const { Kafka, logLevel } = (await import('kafkajs')).default;
        const admin = new Kafka({
          clientId: 'seed-corpus',
          brokers: required(target.env, 'KAFKA_BROKERS').split(','),
          logLevel: logLevel.NOTHING,
        }).admin();
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
        return;
      }
      case 'sqs': {
        const { DeleteQueueCommand, ListQueuesCommand, SQSClient } = await import('@aws-sdk/client-sqs');
        const client = new SQSClient({
          region: target.env.AWS_REGION ?? 'us-east-1',
          ...(target.env.SQS_ENDPOINT ? { endpoint: target.env.SQS_ENDPOINT } : {}),
          credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
        });
        try {
          const { QueueUrls = [] } = await client.send(
            new ListQueuesCommand({ QueueNamePrefix: `${prefix}-` }),
          );
          await Promise.all(QueueUrls.map((url) => client.send(new DeleteQueueCommand({ QueueUrl: url }))));
        } finally {
          client.destroy();
        }
        return;
      }
      case 'sqlite':
        return; // the test's own temporary file
    }
  } catch {
    // Tidying only.
  }
}
