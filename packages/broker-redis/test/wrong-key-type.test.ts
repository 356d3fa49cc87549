import { type CompleteBroker, createEnvelope } from '@polyqueue/core';
import { uniqueQueueName } from '@polyqueue/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestBroker } from './redis-brokers';
import { rawClient } from './redis-server';

/** Each run its own prefix, so keys left by another driver in another test never interfere. */
const PREFIX = `pqwrongtype${process.pid}`;
const raw = rawClient();
const opened: CompleteBroker[] = [];

async function create(name: string): Promise<CompleteBroker> {
  const broker = await createTestBroker(name, { POLYQUEUE_PREFIX: PREFIX, REDIS_BLOCK_MS: '200' });
  opened.push(broker);
  return broker;
}

afterAll(async () => {
  await Promise.all(opened.map((b) => b.close()));
  const keys = await raw.keys(`*${PREFIX}*`);
  if (keys.length > 0) await raw.del(...keys);
  raw.disconnect();
});

const job = () => ({ envelope: createEnvelope('test_job', {}) });

describe('a Redis key of the wrong type', () => {
  it('redis-streams names a list left by a list driver, on publish, consume and ping', async () => {
    const queue = uniqueQueueName('wt');
    const key = `${PREFIX}:${queue}`;
    await raw.rpush(key, JSON.stringify({ type: 'send_email', payload: {} }));
    const broker = await create('redis-streams');
    const expected = new RegExp(
      `key ${key} is a list, redis-streams needs a stream: .*another Redis driver.*delete the key.*POLYQUEUE_PREFIX`,
    );

    // Before any queue is touched there is nothing to check.
    await expect(broker.ping()).resolves.toBeUndefined();
    await expect(broker.publish(queue, [job()])).rejects.toThrow(expected);
    // Once the queue is known, /readyz (ping) says the same, not just a POST.
    await expect(broker.ping()).rejects.toThrow(expected);
    // A consumer fails at start with it instead of retrying WRONGTYPE forever.
    const controller = new AbortController();
    await expect(
      broker.consume(queue, async (d) => d.ack(), { concurrency: 1, signal: controller.signal }),
    ).rejects.toThrow(expected);
    controller.abort();
    expect(await raw.llen(key)).toBe(1); // the list is left alone for the operator

    // Fixed by the operator: ready again, and publishing works.
    await raw.del(key);
    await expect(broker.ping()).resolves.toBeUndefined();
    await broker.publish(queue, [job()]);
    expect(await raw.type(key)).toBe('stream');
  }, 15_000);

  it('redis-reliable names a stream left by redis-streams, and a consumer checks before it starts', async () => {
    const queue = uniqueQueueName('wt');
    const key = `${PREFIX}:${queue}`;
    await raw.xadd(key, '*', 'envelope', JSON.stringify(createEnvelope('test_job', {})));
    const broker = await create('redis-reliable');
    const expected = new RegExp(`key ${key} is a stream, redis-reliable needs a list`);
    const controller = new AbortController();
    await expect(
      broker.consume(queue, async (d) => d.ack(), { concurrency: 1, signal: controller.signal }),
    ).rejects.toThrow(expected);
    controller.abort();
    await expect(broker.ping()).rejects.toThrow(expected);
  }, 15_000);

  it('names an auxiliary key of the wrong type too (the dead letters are a stream)', async () => {
    const queue = uniqueQueueName('wt');
    const dead = `{${PREFIX}:${queue}}:dead`;
    await raw.set(dead, 'not a stream');
    const broker = await create('redis-list');
    await expect(broker.publish(queue, [job()])).rejects.toThrow(
      new RegExp(`key \\{${PREFIX}:${queue}\\}:dead is a string, redis-list needs a stream`),
    );
  });
});
