/**
 * Brokers of the Redis drivers on the test server, and an entry written to a stream by hand,
 * for the driver-specific tests (the conformance suite opens its own through the testkit).
 */
import { createRedisQueueLimits, drivers, queueKeys } from '@polyqueue/broker-redis';
import { type CompleteBroker, type Envelope, parseEnv, silentLogger } from '@polyqueue/core';
import {
  type ConformanceOptions,
  connectDriver,
  HandlerSpy,
  runConformanceSuite,
  startConsumer,
} from '@polyqueue/testkit';
import type { Cluster, Redis } from 'ioredis';
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

/** The package's entry, for the crash scenario's forked consumer. */
const driverModule = new URL('../src/index.ts', import.meta.url).href;

/**
 * Runs the conformance suite on a Redis driver with `env`; a raw message is written as that
 * driver's classic producer does: RPUSH polyqueue:Q '<json>' for the list drivers, XADD with
 * an `envelope` field for redis-streams.
 */
export function runRedisConformance(
  broker: 'redis-list' | 'redis-reliable' | 'redis-streams',
  setup: {
    env: Record<string, string>;
    raw: Redis | Cluster;
    prefix: string;
    leaseMs: number;
    serverHint: string;
  } & Pick<ConformanceOptions, 'restartServer' | 'durableAcrossRestart'>,
): void {
  const { env, raw, prefix, leaseMs, serverHint, restartServer, durableAcrossRestart } = setup;
  runConformanceSuite({
    broker,
    createBroker: () => connectDriver(drivers[broker]!, env),
    driverModule,
    env,
    serverHint,
    leaseMs,
    publishRaw: async (queue, body) => {
      const key = queueKeys(prefix, queue).main;
      if (broker === 'redis-streams') await raw.xadd(key, '*', 'envelope', body);
      else await raw.rpush(key, body);
    },
    restartServer,
    durableAcrossRestart,
    // The limit scenarios keep their tokens and slots in Redis, as STATE_URL=redis:// does.
    createLimits: () =>
      createRedisQueueLimits(env.REDIS_URL ?? REDIS_URL, {
        prefix: `${prefix}limits`,
        ...(env.REDIS_CLUSTER_NODES ? { clusterNodes: env.REDIS_CLUSTER_NODES.split(',') } : {}),
      }),
  });
}
