/** The seed corpus's vocabulary: brokers, producer writes, expected outcomes, targets. */

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

/** The address every printed producer sends to. */
export const USER = 'user@example.com';

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

export function required(env: SeedTarget['env'], name: string): string {
  const value = env[name];
  if (!value) throw new Error(`seed corpus: ${name} is not set in the target's env`);
  return value;
}
