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
 * One file per broker family (sql, redis, rabbitmq, kafka, sqs) holds its examples, its writer
 * and its clean-up; types.ts the vocabulary. Each client library is imported when its broker is
 * written to, so importing the testkit does not load six clients.
 */

import { KAFKA_EXAMPLES, removeKafkaTopics, sendKafka } from './kafka';
import { publishAmqp, RABBITMQ_EXAMPLES, removeRabbitmqQueues } from './rabbitmq';
import { REDIS_EXAMPLES, removeRedisKeys, withRedis } from './redis';
import { insertMysql, insertSqlite, removeMysqlTables, SQL_EXAMPLES, seedSql } from './sql';
import { removeSqsQueues, SQS_EXAMPLES, sendSqs } from './sqs';
import { required, type SeedBroker, type SeedExample, type SeedTarget, seedQueueName } from './types';

export { rabbitmqArticleDeclare } from './rabbitmq';
export { seedSql } from './sql';
export {
  SEED_BROKERS,
  type SeedBroker,
  type SeedExample,
  type SeedOutcome,
  type SeedTarget,
  type SeedWrite,
  seedQueueName,
} from './types';

/**
 * Every example, one broker family after another; within a family the printed producers come
 * before the derived ones (a printed producer sending a job the article's own worker rejects,
 * which must end as a dead letter that says why, never as a silent loss or an endless retry).
 */
export const SEED_CORPUS: readonly SeedExample[] = [
  ...SQL_EXAMPLES,
  ...REDIS_EXAMPLES,
  ...RABBITMQ_EXAMPLES,
  ...KAFKA_EXAMPLES,
  ...SQS_EXAMPLES,
];

/** The corpus examples a broker reads. */
export function seedExamplesFor(broker: SeedBroker): SeedExample[] {
  return SEED_CORPUS.filter((example) => example.brokers.includes(broker));
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

/**
 * Removes what a test made under `prefix` on the target's server (keys, tables, queues, topics),
 * so runs do not pile up. Best effort: a failure here never fails a test.
 */
export async function removeSeedQueues(target: SeedTarget): Promise<void> {
  const prefix = required(target.env, 'POLYQUEUE_PREFIX');
  try {
    switch (target.broker) {
      case 'mysql':
        return await removeMysqlTables(required(target.env, 'MYSQL_URL'), prefix);
      case 'redis-list':
      case 'redis-reliable':
      case 'redis-streams':
        return await removeRedisKeys(required(target.env, 'REDIS_URL'), prefix);
      case 'rabbitmq':
        return await removeRabbitmqQueues(required(target.env, 'AMQP_URL'), prefix);
      case 'kafka':
        return await removeKafkaTopics(required(target.env, 'KAFKA_BROKERS'), prefix);
      case 'sqs':
        return await removeSqsQueues(target.env, prefix);
      case 'sqlite':
        return; // the test's own temporary file
    }
  } catch {
    // Tidying only.
  }
}
