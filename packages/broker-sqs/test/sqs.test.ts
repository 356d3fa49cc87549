import { randomUUID } from 'node:crypto';
import { GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import {
  type CompleteBroker,
  ConfigError,
  createEnvelope,
  type Delivery,
  parseEnv,
  silentLogger,
} from '@polyqueue/core';
import { eventually, HandlerSpy, startConsumer, uniqueQueueName } from '@polyqueue/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { Batcher, batchOutcomes } from '../src/batcher';
import { retryPlan } from '../src/consumer';
import { drivers, sqsEnvSchema } from '../src/index';
import { ATTR } from '../src/messages';
import { QueueNames, safeName } from '../src/queues';
import { deleteQueuesWithPrefix, SERVER_HINT, SQS_ENDPOINT, testClient } from './elasticmq';

const prefix = `pqs${process.pid}`;
const brokers: CompleteBroker[] = [];

async function connect(env: Record<string, string> = {}): Promise<CompleteBroker> {
  const config = parseEnv(sqsEnvSchema, {
    SQS_ENDPOINT,
    SQS_VISIBILITY_TIMEOUT_S: '2',
    SQS_WAIT_TIME_S: '1',
    POLYQUEUE_PREFIX: prefix,
    ...env,
  });
  try {
    const broker = await drivers.sqs.createBroker(config, { logger: silentLogger() });
    brokers.push(broker);
    return broker;
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
}

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await deleteQueuesWithPrefix(prefix);
}, 60_000);

describe('configuration', () => {
  it('names a malformed SQS_ENDPOINT, SQS_FIFO or POLYQUEUE_PREFIX', () => {
    expect(() => parseEnv(sqsEnvSchema, { SQS_ENDPOINT: 'localhost:9324' })).toThrow(ConfigError);
    expect(() => parseEnv(sqsEnvSchema, { SQS_ENDPOINT: 'localhost:9324' })).toThrow(
      /SQS_ENDPOINT: must be a URL/,
    );
    expect(() => parseEnv(sqsEnvSchema, { SQS_FIFO: 'maybe' })).toThrow(/SQS_FIFO: must be true or false/);
    expect(() => parseEnv(sqsEnvSchema, { POLYQUEUE_PREFIX: 'a.b' })).toThrow(/POLYQUEUE_PREFIX/);
    expect(() => parseEnv(sqsEnvSchema, { SQS_WAIT_TIME_S: '21' })).toThrow(/SQS_WAIT_TIME_S/);
  });

  it('defaults to AWS in us-east-1 with standard queues', () => {
    const config = parseEnv(sqsEnvSchema, { SQS_FIFO: 'TRUE' });
    expect(config).toMatchObject({
      AWS_REGION: 'us-east-1',
      SQS_FIFO: true,
      SQS_VISIBILITY_TIMEOUT_S: 30,
      SQS_WAIT_TIME_S: 20,
    });
    expect(config.SQS_ENDPOINT).toBeUndefined();
    expect(parseEnv(sqsEnvSchema, {}).SQS_FIFO).toBe(false);
  });

  it('fails at start, naming the endpoint, when the server cannot be reached', async () => {
    const config = parseEnv(sqsEnvSchema, { SQS_ENDPOINT: 'http://127.0.0.1:1' });
    await expect(drivers.sqs.createBroker(config, { logger: silentLogger() })).rejects.toThrow(
      /cannot reach SQS at http:\/\/127\.0\.0\.1:1/,
    );
  }, 30_000);
});

describe('queue names', () => {
  it('maps logical names to SQS names, hashing what SQS does not allow', () => {
    const standard = new QueueNames('polyqueue', false);
    const fifo = new QueueNames('polyqueue', true);
    expect(standard.queue('email')).toEqual({ main: 'polyqueue-email', dead: 'polyqueue-email-dead' });
    expect(fifo.queue('email')).toEqual({ main: 'polyqueue-email.fifo', dead: 'polyqueue-email-dead.fifo' });
    expect(safeName('a.b', 80)).not.toBe(safeName('a_b', 80));
    expect(safeName('x'.repeat(100), 40)).toHaveLength(40);
  });

  it("keeps one topic's group queues apart from another topic that extends its name", () => {
    const names = new QueueNames('polyqueue', false);
    const ofA = names.group('a', 'g').main;
    const ofAB = names.group('a-b', 'g').main;
    expect(ofA.startsWith(names.topicPrefix('a'))).toBe(true);
    expect(ofAB.startsWith(names.topicPrefix('a'))).toBe(false);
    expect(names.group('a', 'g').dead.startsWith(names.topicPrefix('a'))).toBe(false);
    expect(names.isGroupQueueUrl(`http://h/0/${ofA}.fifo`, 'a')).toBe(false);
  });
});

describe('request batching', () => {
  it('sends what is asked in the same moment as one batch and fails only rejected entries', async () => {
    const calls: string[][] = [];
    const batcher = new Batcher<string>(async (items) => {
      calls.push([...items]);
      return batchOutcomes(items.length, [{ Id: 'e1', Code: 'ReceiptHandleIsInvalid' }], 'DeleteMessage');
    });
    const results = await Promise.allSettled(['a', 'b', 'c'].map((x) => batcher.add(x)));
    expect(calls).toEqual([['a', 'b', 'c']]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toMatch(
      /DeleteMessage failed: ReceiptHandleIsInvalid/,
    );
  });

  it('never puts more than 10 entries in one request', async () => {
    const sizes: number[] = [];
    const batcher = new Batcher<number>(async (items) => {
      sizes.push(items.length);
      return items.map(() => undefined);
    });
    await Promise.all(Array.from({ length: 23 }, (_, i) => batcher.add(i)));
    expect(sizes).toEqual([10, 10, 3]);
  });
});

describe('retry plan', () => {
  const receivedAt = 1_000_000;

  it('hides the message itself for the delay, rounded up to whole seconds', () => {
    expect(retryPlan(0, receivedAt, false, receivedAt)).toEqual({ kind: 'visibility', seconds: 0 });
    expect(retryPlan(1, receivedAt, false, receivedAt)).toEqual({ kind: 'visibility', seconds: 1 });
    expect(retryPlan(1_000, receivedAt, false, receivedAt)).toEqual({ kind: 'visibility', seconds: 1 });
    expect(retryPlan(1_001, receivedAt, true, receivedAt)).toEqual({ kind: 'visibility', seconds: 2 });
    expect(retryPlan(-5, receivedAt, false, receivedAt)).toEqual({ kind: 'visibility', seconds: 0 });
    const elevenHours = 11 * 3_600_000;
    expect(retryPlan(elevenHours, receivedAt, false, receivedAt)).toEqual({
      kind: 'visibility',
      seconds: 39_600,
    });
  });

  it("beyond what is left of SQS's 12 h since the receive: a copy on standard, cut short on FIFO", () => {
    const oneHourLater = receivedAt + 3_600_000;
    const elevenHours = 11 * 3_600_000;
    // 12 h minus the hour the job ran minus the 10 s margin.
    expect(retryPlan(elevenHours, receivedAt, false, oneHourLater)).toEqual({ kind: 'copy' });
    expect(retryPlan(elevenHours, receivedAt, true, oneHourLater)).toEqual({
      kind: 'visibility',
      seconds: 39_590,
    });
    expect(retryPlan(2 * 86_400_000, receivedAt, false, receivedAt)).toEqual({ kind: 'copy' });
  });
});

describe('against ElasticMQ', () => {
  it('standard: retry() keeps the message invisible (in flight, not delayed) and it returns with attempt + 1', async () => {
    const broker = await connect();
    const queue = uniqueQueueName('retry');
    const envelope = createEnvelope('test_job', {});
    const delayMs = 1_200;
    let retriedAt = 0;
    const spy = new HandlerSpy(20_000);
    const consumer = startConsumer(
      broker,
      queue,
      spy.handler('c1', async (d: Delivery) => {
        if (d.attempt === 1) {
          retriedAt = Date.now();
          await d.retry(delayMs);
        } else await d.ack();
      }),
    );
    await consumer.ready;
    await broker.publish(queue, [{ envelope }]);
    await spy.waitFor(() => spy.received.length === 1, 'the first delivery');
    // A copy sent with DelaySeconds would show as delayed; the same message, hidden, is in flight.
    await eventually(
      () => broker.stats(queue),
      (s) => s.ready === 0 && s.inFlight === 1 && s.delayed === 0,
      'the retried message to be in flight',
      10_000,
    );
    await spy.waitFor(() => spy.received.length === 2, 'the retry');
    const [first, second] = spy.received;
    expect(second!.id).toBe(envelope.id);
    expect(second!.delivery.messageId).toBe(first!.delivery.messageId);
    expect(second!.delivery.attempt).toBe(2);
    expect(second!.at - retriedAt).toBeGreaterThanOrEqual(delayMs);
    await eventually(
      () => broker.stats(queue),
      (s) => s.ready === 0 && s.inFlight === 0 && s.delayed === 0,
      'the queue to be empty after the ack',
      10_000,
    );
    await consumer.stop();
  });

  it('standard: retries count as receives for the redrive policy; a redriven job starts again at attempt 1', async () => {
    const broker = await connect({ SQS_MAX_RECEIVE_COUNT: '2' });
    const queue = uniqueQueueName('retryredrive');
    const envelope = createEnvelope('test_job', {});
    let redriven = false;
    const spy = new HandlerSpy(20_000);
    const consumer = startConsumer(
      broker,
      queue,
      spy.handler('c1', async (d: Delivery) => {
        if (redriven) await d.ack();
        else await d.retry(0);
      }),
    );
    await consumer.ready;
    await broker.publish(queue, [{ envelope }]);
    await spy.waitFor(() => spy.received.length === 2, 'two deliveries');
    expect(spy.received.map((r) => r.delivery.attempt)).toEqual([1, 2]);
    // The third receive is past maxReceiveCount: SQS moves the message to Q-dead instead.
    await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 1 && s.ready === 0 && s.inFlight === 0,
      'the redrive policy to move it',
      20_000,
    );
    const [dead] = await broker.deadLetters(queue).list(5);
    expect(dead!.id).toBe(envelope.id);
    expect(dead!.reason).toMatch(/redrive policy after 2 receives .*retried/);
    redriven = true;
    expect(await broker.deadLetters(queue).redrive([envelope.id])).toBe(1);
    await spy.waitFor(() => spy.received.length === 3, 'the redriven job');
    expect(spy.received[2]!.id).toBe(envelope.id);
    expect(spy.received[2]!.delivery.attempt).toBe(1);
    await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 0 && s.ready === 0 && s.inFlight === 0,
      'both queues to be empty',
      10_000,
    );
    await consumer.stop();
  });

  it('counts a receive after the visibility timeout as an attempt, and SQS parks the message after maxReceiveCount', async () => {
    const broker = await connect({ SQS_MAX_RECEIVE_COUNT: '2', SQS_VISIBILITY_TIMEOUT_S: '1' });
    const queue = uniqueQueueName('poison');
    const spy = new HandlerSpy(20_000);
    // Never settles: as if each worker hung or died on the job.
    const consumer = startConsumer(
      broker,
      queue,
      spy.handler('c1', async () => {}),
    );
    await consumer.ready;
    const envelope = createEnvelope('test_job', {});
    await broker.publish(queue, [{ envelope }]);
    await spy.waitFor(() => spy.received.length === 2, 'two receives');
    expect(spy.received.map((r) => r.delivery.attempt)).toEqual([1, 2]);
    await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 1,
      'the redrive policy to move it',
      20_000,
    );
    await consumer.stop();
    const [dead] = await broker.deadLetters(queue).list(5);
    expect(dead!.id).toBe(envelope.id);
    expect(dead!.reason).toMatch(/redrive policy after 2 receives/);
    expect(spy.count(envelope.id)).toBe(2);
  });

  it('re-schedules a message held beyond the 15-minute DelaySeconds limit until its deadline', async () => {
    const broker = await connect();
    const queue = uniqueQueueName('hop');
    await broker.stats(queue); // creates the queue
    const client = testClient();
    const envelope = createEnvelope('test_job', {});
    const notBefore = Date.now() + 1_500;
    try {
      const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: `${prefix}-${queue}` }));
      // What publish() sends for a long delay, minus the 15 minutes of DelaySeconds.
      await client.send(
        new SendMessageCommand({
          QueueUrl,
          MessageBody: JSON.stringify(envelope),
          MessageAttributes: { [ATTR.notBefore]: { DataType: 'Number', StringValue: String(notBefore) } },
        }),
      );
    } finally {
      client.destroy();
    }
    const spy = new HandlerSpy(20_000);
    const consumer = startConsumer(broker, queue, spy.handler());
    await consumer.ready;
    await spy.waitFor(() => spy.received.length === 1, 'the held message');
    expect(spy.received[0]!.at).toBeGreaterThanOrEqual(notBefore);
    expect(spy.received[0]!.delivery.attempt).toBe(1);
    expect(spy.received[0]!.envelope).toEqual(envelope);
    await consumer.stop();
  });

  it('FIFO: refuses a per-message delay, and drops a second job with the same idempotency key', async () => {
    const broker = await connect({ SQS_FIFO: 'true' });
    expect(broker.capabilities).toMatchObject({
      delayedDelivery: 'none',
      ordering: 'per-key',
      priority: 'none',
    });
    const queue = uniqueQueueName('fifo');
    await expect(
      broker.publish(queue, [{ envelope: createEnvelope('test_job', {}), delayMs: 1000 }]),
    ).rejects.toThrow(/FIFO queues cannot delay one message/);
    const key = `order-${randomUUID()}`;
    await broker.publish(queue, [
      { envelope: createEnvelope('test_job', { n: 1 }, { idempotencyKey: key }) },
    ]);
    await broker.publish(queue, [
      { envelope: createEnvelope('test_job', { n: 2 }, { idempotencyKey: key }) },
    ]);
    await broker.publish(queue, [{ envelope: createEnvelope('test_job', { n: 3 }) }]);
    expect((await broker.stats(queue)).ready).toBe(2);
  });

  it('FIFO: retry() keeps the message (same id, attempt + 1) and its key waits behind it', async () => {
    const broker = await connect({ SQS_FIFO: 'true' });
    const queue = uniqueQueueName('fiforetry');
    const first = createEnvelope('test_job', { n: 1 });
    const second = createEnvelope('test_job', { n: 2 });
    await broker.publish(queue, [
      { envelope: first, key: 'k' },
      { envelope: second, key: 'k' },
    ]);
    const spy = new HandlerSpy(20_000);
    const consumer = startConsumer(
      broker,
      queue,
      spy.handler('c1', async (d: Delivery, r) => {
        if (r.id === first.id && d.attempt === 1) await d.retry(1_000);
        else await d.ack();
      }),
      1,
    );
    await consumer.ready;
    await spy.waitFor(() => spy.received.length === 3, 'three deliveries');
    expect(spy.ids()).toEqual([first.id, first.id, second.id]);
    expect(spy.received[1]!.delivery.attempt).toBe(2);
    expect(spy.received[1]!.delivery.messageId).toBe(spy.received[0]!.delivery.messageId);
    await consumer.stop();
  });
});
