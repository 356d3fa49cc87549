/**
 * Mixed fleets, the other way round from the seed-corpus test: a job posted through polyqueue's
 * HTTP API, read by the seed article's own consumers on every broker where the article shows
 * one, each written as the article writes it (in TypeScript with the broker's own client instead
 * of Python or PHP). polyqueue's envelope `{id, type, payload, attempt, createdAt}` has `type`
 * and `payload` at the top level, so `job['type']` / `job['payload']` read it; what does not
 * work unchanged is pinned here too (docs/wire-format.md, "Mixed fleets"):
 *
 * - RabbitMQ: the consumer's `queue_declare(queue='job_queue', durable=True)` is refused
 *   (polyqueue declares the queue with arguments); with the declare passive, the rest works.
 * - Q4M: `queue_wait()` exists only in the Q4M storage engine; polyqueue's mysql table has the
 *   article's columns (`job_type`, `payload`) but is claimed with SKIP LOCKED, not queue_wait.
 *
 * Real servers; each test owns its prefix and removes it. Nothing sleeps: every read is the
 * article's own blocking call (BLPOP, BRPOPLPUSH, a long poll) or an awaited callback.
 * (Redis Streams has its own test: article-streams-consumer.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import type { CompleteBroker } from '@polyqueue/core';
import { removeSeedQueues, LOCAL_SERVERS as SERVERS, type SeedBroker } from '@polyqueue/testkit';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';

const EMAIL = { to: 'legacy-reader@example.com', subject: 'Mixed fleet', body: 'posted to polyqueue' };

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'polyqueue-api-article-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let tests = 0;
function prefixFor(broker: string): string {
  tests += 1;
  return `ac${process.pid}${broker.replace(/[^a-z]/g, '').slice(0, 4)}${tests}`;
}

/** Posts EMAIL through the API over a real broker; the broker's env and the job id. */
async function postThroughApi(
  broker: SeedBroker,
  extra: Record<string, string>,
): Promise<{ env: Record<string, string>; jobId: string; close(): Promise<void> }> {
  const env = { BROKER: broker, POLYQUEUE_PREFIX: prefixFor(broker), ...extra };
  let instance: CompleteBroker;
  try {
    instance = await createBrokerFromEnv(env);
  } catch (error) {
    throw new Error(
      `cannot reach the ${broker} server (${JSON.stringify(extra)}): ${(error as Error).message}`,
    );
  }
  const app = createServer({ broker: instance, state: new MemoryStateStore(), storageRoot: root });
  const res = await request(app).post('/v1/emails').send(EMAIL);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return {
    env,
    jobId: res.body.id,
    async close() {
      await instance.close();
      await removeSeedQueues({ broker, env, queue: 'email' });
    },
  };
}

/** Rejects after ms, naming what did not happen. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The article's handle_job for send_email: `payload['to']` (a KeyError when it is missing). */
function handleJob(job: { type: string; payload: Record<string, unknown> }): string {
  if (job.type !== 'send_email') throw new Error(`Unknown job type: ${job.type}`);
  if (!('to' in job.payload)) throw new Error("KeyError: 'to'");
  return `Sending email to ${job.payload.to}`;
}

describe("the seed article's consumers read what polyqueue publishes", () => {
  it('Redis list: RedisQueueWorker (BLPOP, json.loads, job["type"], job["payload"]) works unchanged', async () => {
    const posted = await postThroughApi('redis-list', { REDIS_URL: SERVERS.REDIS_URL });
    const { Redis } = await import('ioredis');
    const redis = new Redis(SERVERS.REDIS_URL);
    try {
      // result = self.redis.blpop(self.queue_name, timeout=10); _, message = result; job = json.loads(message)
      const result = await redis.blpop(`${posted.env.POLYQUEUE_PREFIX}:email`, 10);
      expect(result, 'BLPOP returned nothing in 10 s').not.toBeNull();
      const job = JSON.parse(result![1]);
      expect(job.type).toBe('send_email');
      expect(job.payload).toEqual(EMAIL);
      expect(handleJob(job)).toBe('Sending email to legacy-reader@example.com');
      expect(job.id).toBe(posted.jobId);
    } finally {
      redis.disconnect();
      await posted.close();
    }
  }, 30_000);

  it('Redis reliable list: ReliableQueue (BRPOPLPUSH to <queue>:processing, LREM) works unchanged', async () => {
    const posted = await postThroughApi('redis-reliable', { REDIS_URL: SERVERS.REDIS_URL });
    const { Redis } = await import('ioredis');
    const redis = new Redis(SERVERS.REDIS_URL);
    const queue = `${posted.env.POLYQUEUE_PREFIX}:email`;
    const processing = `${queue}:processing`;
    try {
      const message = await redis.brpoplpush(queue, processing, 10);
      expect(message, 'BRPOPLPUSH returned nothing in 10 s').not.toBeNull();
      const job = JSON.parse(message!);
      expect(handleJob(job)).toBe('Sending email to legacy-reader@example.com');
      expect(await redis.lrem(processing, 1, message!)).toBe(1); // complete()
    } finally {
      redis.disconnect();
      await posted.close();
    }
  }, 30_000);

  it('RabbitMQ: RabbitMQConsumer works once its queue_declare is passive; the declare as printed is refused', async () => {
    const posted = await postThroughApi('rabbitmq', { AMQP_URL: SERVERS.AMQP_URL });
    const amqp = (await import('amqplib')).default;
    const connection = await amqp.connect(SERVERS.AMQP_URL);
    connection.on('error', () => {}); // a refused declare closes the channel, not the connection
    const queue = `${posted.env.POLYQUEUE_PREFIX}.email`;
    try {
      // self.channel.queue_declare(queue='job_queue', durable=True), as printed:
      const printed = await connection.createChannel();
      printed.on('error', () => {});
      await expect(printed.assertQueue(queue, { durable: true })).rejects.toThrow(/PRECONDITION_FAILED/);

      // The one change: queue_declare(queue=..., passive=True). The rest is the article's.
      const channel = await connection.createChannel();
      await channel.checkQueue(queue);
      await channel.prefetch(1); // basic_qos(prefetch_count=1)
      const handled = new Promise<string>((resolve, reject) => {
        void channel.consume(queue, (message) => {
          if (!message) return;
          try {
            const job = JSON.parse(message.content.toString('utf8')); // json.loads(body)
            const line = handleJob(job); // process_job: job["type"], job["payload"]
            channel.ack(message); // basic_ack
            resolve(line);
          } catch (error) {
            channel.nack(message, false, true);
            reject(error);
          }
        });
      });
      expect(await within(handled, 10_000, 'the consumer handled nothing')).toBe(
        'Sending email to legacy-reader@example.com',
      );
    } finally {
      await connection.close();
      await posted.close();
    }
  }, 60_000);

  it('Kafka: KafkaConsumer (its own group, earliest, json.loads value, job["type"]) works unchanged', async () => {
    const posted = await postThroughApi('kafka', {
      KAFKA_BROKERS: SERVERS.KAFKA_BROKERS,
      KAFKA_PARTITIONS: '1',
    });
    const { Kafka, logLevel } = (await import('kafkajs')).default;
    const consumer = new Kafka({
      clientId: 'article-consumer',
      brokers: SERVERS.KAFKA_BROKERS.split(','),
      logLevel: logLevel.NOTHING,
    }).consumer({
      groupId: `${posted.env.POLYQUEUE_PREFIX}.job_workers`,
      sessionTimeout: 6_000,
      heartbeatInterval: 1_000,
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: `${posted.env.POLYQUEUE_PREFIX}.email`, fromBeginning: true }); // auto_offset_reset='earliest'
      const handled = new Promise<{ type: string; payload: Record<string, unknown> }>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            const job = JSON.parse(message.value!.toString('utf8')); // value_deserializer
            resolve(job); // print(f"Processing: {job['type']}")
          },
        });
      });
      const job = await within(handled, 45_000, 'the Kafka consumer received nothing');
      expect(job.type).toBe('send_email');
      expect(handleJob(job)).toBe('Sending email to legacy-reader@example.com');
    } finally {
      await consumer.disconnect();
      await posted.close();
    }
  }, 90_000);

  it('SQS: process_messages (receive_message, json.loads Body, job["type"], delete_message) works unchanged', async () => {
    const posted = await postThroughApi('sqs', {
      SQS_ENDPOINT: SERVERS.SQS_ENDPOINT,
      AWS_REGION: SERVERS.AWS_REGION,
    });
    const { DeleteMessageCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } = await import(
      '@aws-sdk/client-sqs'
    );
    const sqs = new SQSClient({
      region: SERVERS.AWS_REGION,
      endpoint: SERVERS.SQS_ENDPOINT,
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    try {
      const { QueueUrl } = await sqs.send(
        new GetQueueUrlCommand({ QueueName: `${posted.env.POLYQUEUE_PREFIX}-email` }),
      );
      const response = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 20,
          VisibilityTimeout: 60,
        }),
      );
      const messages = response.Messages ?? [];
      expect(messages).toHaveLength(1);
      const job = JSON.parse(messages[0]!.Body!);
      expect(job.type).toBe('send_email');
      expect(handleJob(job)).toBe('Sending email to legacy-reader@example.com'); // job['payload']['to']
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: messages[0]!.ReceiptHandle! }));
    } finally {
      sqs.destroy();
      await posted.close();
    }
  }, 60_000);

  it("Q4M: the PHP worker's queue_wait() does not exist on InnoDB; the row's job_type and payload columns read as it expects", async () => {
    const posted = await postThroughApi('mysql', { MYSQL_URL: SERVERS.MYSQL_URL });
    const mysql = (await import('mysql2/promise')).default;
    const connection = await mysql.createConnection({ uri: SERVERS.MYSQL_URL });
    const table = `${posted.env.POLYQUEUE_PREFIX}_email`;
    try {
      // "SELECT * FROM job_queue WHERE queue_wait('job_queue', 10)"
      await expect(
        connection.query(`SELECT * FROM \`${table}\` WHERE queue_wait('${table}', 10)`),
      ).rejects.toThrow(/queue_wait does not exist/);
      // The row itself: $job['job_type'], json_decode($job['payload'], true)['to'].
      const [rows] = await connection.query(`SELECT * FROM \`${table}\``);
      const row = (rows as { job_type: string; payload: string }[])[0]!;
      expect(handleJob({ type: row.job_type, payload: JSON.parse(row.payload) })).toBe(
        'Sending email to legacy-reader@example.com',
      );
    } finally {
      await connection.end();
      await posted.close();
    }
  }, 30_000);
});
