import { type CompleteBroker, createEnvelope, parseEnv, silentLogger } from '@polyqueue/core';
import { eventually, uniqueQueueName } from '@polyqueue/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRabbitmqBroker, rabbitmqEnvSchema } from '../src/index';
import { AMQP_URL, deleteQueuesWithPrefix, SERVER_HINT } from './rabbitmq-server';

const prefix = `pqpre${process.pid}`;

describe('rabbitmq consumer with AMQP_PREFETCH above its concurrency', () => {
  let broker: CompleteBroker;

  beforeAll(async () => {
    const env = { AMQP_URL, POLYQUEUE_PREFIX: prefix, AMQP_PREFETCH: '20' };
    try {
      broker = await createRabbitmqBroker(parseEnv(rabbitmqEnvSchema, env), { logger: silentLogger() });
    } catch (error) {
      throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
    }
  }, 30_000);

  afterAll(async () => {
    await broker?.close();
    await deleteQueuesWithPrefix(prefix);
  }, 60_000);

  it('runs the held deliveries one slot at a time and gives the unstarted ones back when it stops', async () => {
    const queue = uniqueQueueName('held');
    const jobs = Array.from({ length: 10 }, (_, i) => ({ envelope: createEnvelope('test_job', { i }) }));
    await broker.publish(queue, jobs);
    const controller = new AbortController();
    let running = 0;
    let most = 0;
    const seen: string[] = [];
    await broker.consume(
      queue,
      async (delivery) => {
        running += 1;
        most = Math.max(most, running);
        seen.push(delivery.messageId);
        await new Promise((resolve) => setImmediate(resolve));
        running -= 1;
        await delivery.ack();
        if (seen.length === 3) controller.abort();
      },
      { concurrency: 1, signal: controller.signal },
    );
    expect(most).toBe(1);
    expect(seen).toHaveLength(3);
    // The 7 held and never started are back in the queue, once each.
    await eventually(
      () => broker.stats(queue),
      (s) => s.ready === 7,
      'the unstarted deliveries back',
    );

    const rest = new AbortController();
    await broker.consume(
      queue,
      async (delivery) => {
        seen.push(delivery.messageId);
        await delivery.ack();
        if (seen.length === 10) rest.abort();
      },
      { concurrency: 4, signal: rest.signal },
    );
    expect(new Set(seen).size).toBe(10);
    await eventually(
      () => broker.stats(queue),
      (s) => s.ready === 0,
      'an empty queue',
    );
  }, 30_000);
});
