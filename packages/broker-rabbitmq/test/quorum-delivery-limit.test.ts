import { type CompleteBroker, createEnvelope, parseEnv, silentLogger } from '@polyqueue/core';
import { eventually, uniqueQueueName } from '@polyqueue/testkit';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRabbitmqBroker, queueNames, rabbitmqEnvSchema } from '../src/index';
import { AMQP_URL, deleteQueuesWithPrefix, SERVER_HINT } from './rabbitmq-server';

const prefix = `pqquorum${process.pid}`;
const DELIVERY_LIMIT = 3;

/**
 * Gives a message back to its queue as a dying consumer does (basic.nack with requeue), until
 * RabbitMQ stops handing it out. Returns how many times it was handed out.
 */
async function returnUntilGone(queue: string, atMost: number): Promise<number> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    let handedOut = 0;
    for (let i = 0; i < atMost; i++) {
      // A message on its way back (an expired delay tier) takes a moment to arrive.
      const message = await eventually(
        async () => channel.get(queue, { noAck: false }),
        (got) => got !== false || handedOut > 0,
        `a message in ${queue}`,
        10_000,
        20,
      );
      if (!message) return handedOut;
      handedOut++;
      channel.nack(message, false, true);
    }
    return handedOut;
  } finally {
    await connection.close().catch(() => {});
  }
}

describe('rabbitmq quorum queues', () => {
  let broker: CompleteBroker;

  beforeAll(async () => {
    try {
      broker = await createRabbitmqBroker(
        parseEnv(rabbitmqEnvSchema, {
          AMQP_URL,
          AMQP_QUEUE_TYPE: 'quorum',
          AMQP_DELIVERY_LIMIT: String(DELIVERY_LIMIT),
          POLYQUEUE_PREFIX: prefix,
          AMQP_RECONNECT_MAX_MS: '500',
        }),
        { logger: silentLogger() },
      );
    } catch (error) {
      throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
    }
  }, 30_000);

  afterAll(async () => {
    await broker?.close();
    await deleteQueuesWithPrefix(prefix);
  }, 60_000);

  it('dead-letters a message given back more than AMQP_DELIVERY_LIMIT times, with the reason', async () => {
    const queue = uniqueQueueName('qlimit');
    const names = queueNames(prefix, queue);
    // Through a delay tier first: the message then carries an x-death of its TTL expiry, which
    // must not be mistaken for the reason it was dead-lettered.
    const envelope = createEnvelope('test_job', { poison: true });
    await broker.publish(queue, [{ envelope, delayMs: 200 }]);

    const handedOut = await returnUntilGone(names.work, DELIVERY_LIMIT + 5);
    // Handed out once, then DELIVERY_LIMIT returns are allowed; the next one dead-letters it.
    expect(handedOut).toBe(DELIVERY_LIMIT + 1);

    const stats = await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 1,
      'the message in the dead-letter queue',
    );
    expect(stats).toMatchObject({ ready: 0, dead: 1 });
    const [letter] = await broker.deadLetters(queue).list(10);
    expect(letter?.id).toBe(envelope.id);
    expect(JSON.parse(letter!.body)).toMatchObject({ id: envelope.id, payload: { poison: true } });
    expect(letter?.reason).toMatch(/delivery_limit/);
    expect(letter?.reason).toMatch(/AMQP_DELIVERY_LIMIT/);
    expect(letter?.reason).not.toMatch(/expired/);

    // A redriven dead letter is a fresh job again: it is handed out, not dropped at once.
    expect(await broker.deadLetters(queue).redrive('all')).toBe(1);
    const again = await eventually(
      () => broker.stats(queue),
      (s) => s.ready === 1 && s.dead === 0,
      'the redriven message',
    );
    expect(again.ready).toBe(1);
  });

  it('names the delivery limit when a quorum queue from before it exists (redeclaring is refused)', async () => {
    const queue = uniqueQueueName('qold');
    const names = queueNames(prefix, queue);
    // What an earlier polyqueue declared: a quorum work queue without limit or dead-letter target.
    const connection = await amqp.connect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      await channel.assertQueue(names.work, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    } finally {
      await connection.close();
    }
    await expect(broker.publish(queue, [{ envelope: createEnvelope('test_job', {}) }])).rejects.toThrow(
      new RegExp(
        `queue "${names.work.replace(/\./g, '\\.')}".*already exists with different arguments.*x-delivery-limit.*AMQP_DELIVERY_LIMIT`,
      ),
    );
  });
});
