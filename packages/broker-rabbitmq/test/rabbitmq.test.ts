import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type CompleteBroker, ConfigError, createEnvelope, parseEnv, silentLogger } from '@polyqueue/core';
import { eventually, HandlerSpy, startConsumer, uniqueQueueName } from '@polyqueue/testkit';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRabbitmqBroker, queueNames, rabbitmqEnvSchema } from '../src/index';
import {
  AMQP_URL,
  deleteQueuesWithPrefix,
  ensureRabbitmqRunning,
  publishRaw,
  SERVER_HINT,
} from './rabbitmq-server';

const prefix = `pqdrv${process.pid}`;
const env = {
  AMQP_URL,
  POLYQUEUE_PREFIX: prefix,
  AMQP_RECONNECT_MAX_MS: '500',
  AMQP_CONNECT_TIMEOUT_MS: '10000',
  AMQP_HEARTBEAT_S: '5',
};

async function rawChannel<T>(fn: (channel: amqp.Channel) => Promise<T>): Promise<T> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    return await fn(channel);
  } finally {
    await connection.close().catch(() => {});
  }
}

describe('rabbitmq driver configuration', () => {
  it('names AMQP_URL when it is not an amqp URL', () => {
    expect(() => parseEnv(rabbitmqEnvSchema, { AMQP_URL: 'http://localhost:5672' })).toThrow(ConfigError);
    expect(() => parseEnv(rabbitmqEnvSchema, { AMQP_URL: 'http://localhost:5672' })).toThrow(/AMQP_URL/);
    expect(() => parseEnv(rabbitmqEnvSchema, { AMQP_QUEUE_TYPE: 'stream' })).toThrow(/AMQP_QUEUE_TYPE/);
  });

  it('defaults to the local broker and classic queues', () => {
    const config = parseEnv(rabbitmqEnvSchema, {});
    expect(config.AMQP_URL).toBe('amqp://guest:guest@127.0.0.1:5672');
    expect(config.AMQP_QUEUE_TYPE).toBe('classic');
    expect(config.POLYQUEUE_PREFIX).toBe('polyqueue');
  });

  it('fails at start with the broker address, password hidden, when nothing listens', async () => {
    const config = parseEnv(rabbitmqEnvSchema, { AMQP_URL: 'amqp://guest:secret@127.0.0.1:1' });
    await expect(createRabbitmqBroker(config, { logger: silentLogger() })).rejects.toThrow(
      /cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/,
    );
  });
});

describe('rabbitmq driver on a real broker', () => {
  let broker: CompleteBroker;

  beforeAll(async () => {
    try {
      broker = await createRabbitmqBroker(parseEnv(rabbitmqEnvSchema, env), { logger: silentLogger() });
    } catch (error) {
      throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
    }
  }, 30_000);

  afterAll(async () => {
    await broker?.close();
    await ensureRabbitmqRunning();
    await deleteQueuesWithPrefix(prefix);
  }, 60_000);

  it('lets a short delay pass a long one waiting before it (no head-of-line blocking)', async () => {
    const queue = uniqueQueueName('hol');
    const slow = createEnvelope('test_job', { slow: true });
    const fast = createEnvelope('test_job', { fast: true });
    await broker.publish(queue, [{ envelope: slow, delayMs: 3_600_000 }]);
    await broker.publish(queue, [{ envelope: fast, delayMs: 300 }]);
    const spy = new HandlerSpy(20_000);
    const consumer = startConsumer(broker, queue, spy.handler());
    try {
      await consumer.ready;
      await spy.waitFor(() => spy.count(fast.id) === 1, 'the short delay');
      expect(spy.count(slow.id)).toBe(0);
      const stats = await broker.stats(queue);
      expect(stats).toMatchObject({ ready: 0, delayed: 1 });
      const names = queueNames(prefix, queue);
      const inHourTier = await rawChannel(
        async (ch) => (await ch.checkQueue(names.tiers.at(-1)!)).messageCount,
      );
      expect(inHourTier).toBe(1);
    } finally {
      await consumer.stop();
    }
  });

  it('records the reason and time of a dead letter in headers any AMQP tool can read', async () => {
    const queue = uniqueQueueName('hdr');
    const envelope = createEnvelope('test_job', {});
    await broker.publish(queue, [{ envelope }]);
    const spy = new HandlerSpy(20_000);
    const consumer = startConsumer(
      broker,
      queue,
      spy.handler('c1', (d) => d.deadLetter('no good')),
    );
    await consumer.ready;
    await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 1,
      'the dead letter',
    );
    await consumer.stop();
    const message = await rawChannel(async (ch) => {
      const got = await ch.get(queueNames(prefix, queue).dead, { noAck: true });
      return got || undefined;
    });
    expect(message?.properties.messageId).toBe(envelope.id);
    expect(String(message?.properties.headers?.['x-polyqueue-reason'])).toBe('no good');
    expect(Number.isNaN(Date.parse(String(message?.properties.headers?.['x-polyqueue-dead-at'])))).toBe(
      false,
    );
    expect(JSON.parse(message!.content.toString()).id).toBe(envelope.id);
  });

  it('carries the attempt in a header, and reads a foreign body without one', async () => {
    const queue = uniqueQueueName('attempt');
    const names = queueNames(prefix, queue);
    const ours = createEnvelope('test_job', { ours: true });
    await broker.publish(queue, [{ envelope: ours }]);
    // Looked at without ack: closing the raw connection gives it back to the queue.
    const published = await rawChannel(
      async (ch) => (await ch.get(names.work, { noAck: false })) || undefined,
    );
    expect(published?.properties.headers?.['x-polyqueue-attempt']).toBe(1);
    // A foreign producer's envelope on its third attempt, with no header: the body says.
    const foreign = { ...createEnvelope('test_job', { foreign: true }), attempt: 3 };
    await publishRaw(names.work, JSON.stringify(foreign));
    const spy = new HandlerSpy(20_000);
    const consumer = startConsumer(
      broker,
      queue,
      spy.handler('c1', (d) => (d.attempt < 4 && d.body.includes('"foreign"') ? d.retry(0) : d.ack())),
    );
    try {
      await consumer.ready;
      await spy.waitFor(() => spy.count(ours.id) === 1 && spy.count(foreign.id) === 2, 'both, and the retry');
      const attempts = (id: string) => spy.received.filter((r) => r.id === id).map((r) => r.delivery.attempt);
      expect(attempts(ours.id)).toEqual([1]);
      expect(attempts(foreign.id)).toEqual([3, 4]);
      expect(spy.received.filter((r) => r.id === foreign.id).map((r) => r.envelope?.attempt)).toEqual([3, 4]);
    } finally {
      await consumer.stop();
    }
  });

  it('keeps dead letters in order when listed twice', async () => {
    const queue = uniqueQueueName('order');
    const envelopes = Array.from({ length: 5 }, (_, i) => createEnvelope('test_job', { i }));
    await broker.publish(
      queue,
      envelopes.map((envelope) => ({ envelope })),
    );
    const spy = new HandlerSpy(20_000);
    const consumer = startConsumer(
      broker,
      queue,
      spy.handler('c1', (d) => d.deadLetter('x')),
      1,
    );
    await consumer.ready;
    await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 5,
      'five dead letters',
    );
    await consumer.stop();
    const store = broker.deadLetters(queue);
    const first = (await store.list(10)).map((d) => d.id);
    const second = (await store.list(3)).map((d) => d.id);
    expect(first).toEqual(envelopes.map((e) => e.id));
    expect(second).toEqual(first.slice(0, 3));
  });

  it('reports a queue declared elsewhere with other arguments, naming it', async () => {
    const queue = uniqueQueueName('conflict');
    const name = queueNames(prefix, queue).work;
    await rawChannel((ch) => ch.assertQueue(name, { durable: true }));
    const envelope = createEnvelope('test_job', {});
    await expect(broker.publish(queue, [{ envelope }])).rejects.toThrow(
      new RegExp(`queue "${name}".*already exists with different arguments`),
    );
    const consumer = startConsumer(broker, queue, async (d) => d.ack());
    await expect(consumer.ready).rejects.toThrow(/PRECONDITION.FAILED/);
    // The broker stays usable for other queues.
    await broker.publish(uniqueQueueName('fine'), [{ envelope }]);
  });

  it('declares a deleted queue again: publishes are not lost and the consumer resumes', async () => {
    const queue = uniqueQueueName('deleted');
    const spy = new HandlerSpy(30_000);
    const consumer = startConsumer(broker, queue, spy.handler());
    try {
      await consumer.ready;
      const before = createEnvelope('test_job', { before: true });
      await broker.publish(queue, [{ envelope: before }]);
      await spy.waitFor(() => spy.count(before.id) === 1, 'a job before the deletion');
      await rawChannel((ch) => ch.deleteQueue(queueNames(prefix, queue).work));
      const after = createEnvelope('test_job', { after: true });
      await broker.publish(queue, [{ envelope: after }]);
      await spy.waitFor(() => spy.count(after.id) === 1, 'a job after the deletion');
    } finally {
      await consumer.stop();
    }
  });

  it('reports a dropped connection and resumes consuming by itself', async () => {
    const queue = uniqueQueueName('drop');
    const changes: boolean[] = [];
    const spy = new HandlerSpy(30_000);
    const controller = new AbortController();
    let ready!: () => void;
    const attached = new Promise<void>((resolve) => {
      ready = resolve;
    });
    const done = broker.consume(queue, spy.handler(), {
      concurrency: 2,
      signal: controller.signal,
      onReady: ready,
      onConnectionChange: (connected) => {
        changes.push(connected);
        spy.notify();
      },
    });
    try {
      await attached;
      await promisify(execFile)('rabbitmqctl', ['close_all_connections', 'polyqueue driver test'], {
        timeout: 60_000,
      });
      await spy.waitFor(() => changes.includes(false) && changes.at(-1) === true, 'lost, then restored');
      await eventually(() => broker.ping().then(() => true), Boolean, 'ping after the reconnection');
      const after = createEnvelope('test_job', {});
      await broker.publish(queue, [{ envelope: after }]);
      await spy.waitFor(() => spy.count(after.id) === 1, 'a job after the reconnection');
    } finally {
      controller.abort();
      await done;
    }
  });
});
