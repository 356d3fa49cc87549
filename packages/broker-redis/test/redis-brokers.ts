/**
 * Brokers of the Redis drivers on the test server, and an entry written to a stream by hand,
 * for the driver-specific tests (the conformance suite opens its own through the testkit).
 */
import { drivers, queueKeys } from '@polyqueue/broker-redis';
import { type CompleteBroker, type Envelope, parseEnv, silentLogger } from '@polyqueue/core';
import { HandlerSpy, startConsumer } from '@polyqueue/testkit';
import type { Redis } from 'ioredis';
import { REDIS_URL, SERVER_HINT } from './redis-server';

/** A driver's broker on REDIS_URL with these settings; fails naming the server to start. */
export async function createTestBroker(name: string, env: Record<string, string>): Promise<CompleteBroker> {
  const driver = drivers[name]!;
  try {
    return await driver.createBroker(parseEnv(driver.envSchema, { REDIS_URL, ...env }), {
      logger: silentLogger(),
    });
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
}

/**
 * Starts one consumer of `queue`, XADDs `fields` to its stream as a producer in another
 * language would, and returns the entry's id with the envelope the consumer received.
 */
export async function consumeHandWrittenEntry(
  broker: CompleteBroker,
  raw: Redis,
  prefix: string,
  queue: string,
  fields: string[],
): Promise<{ id: string; envelope: Envelope | undefined }> {
  const spy = new HandlerSpy();
  const c = startConsumer(broker, queue, spy.handler(), 1);
  await c.ready;
  const id = (await raw.xadd(queueKeys(prefix, queue).main, '*', ...fields))!;
  await spy.waitFor(() => spy.received.length === 1, `the entry ${fields.join(' ')}`);
  await c.stop();
  return { id, envelope: spy.received[0]!.envelope };
}
