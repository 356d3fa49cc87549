/**
 * Settles of one consumer go out in batches: 200 acks asked for at the same moment take far
 * fewer than 200 settle script calls, counted with MONITOR on the server (counted, not timed),
 * and each ack resolves only once its job is settled in Redis.
 */
import { CONSUMER_GROUP, queueKeys } from '@polyqueue/broker-redis';
import { type CompleteBroker, createEnvelope, type Delivery } from '@polyqueue/core';
import { deferred, eventually, startConsumer, uniqueQueueName } from '@polyqueue/testkit';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestBroker } from './redis-brokers';
import { rawClient } from './redis-server';

const PREFIX = 'pqtest';
const JOBS = 200;
const raw = rawClient();
const opened: CompleteBroker[] = [];

afterAll(async () => {
  await Promise.all(opened.map((b) => b.close()));
  raw.disconnect();
});

async function create(name: string): Promise<CompleteBroker> {
  const broker = await createTestBroker(name, {
    POLYQUEUE_PREFIX: PREFIX,
    REDIS_BLOCK_MS: '300',
    REDIS_POLL_MS: '100',
    // Long enough that no lease lapses (and nothing is recovered) while the test runs.
    REDIS_LEASE_MS: '60000',
  });
  opened.push(broker);
  return broker;
}

/**
 * The settle script calls the server runs, as MONITOR reports them: EVAL (ioredis's first call
 * of a script on a connection) or EVALSHA, told apart from the other scripts by their KEYS (no
 * other script takes these keys in these places). `keys` lists every KEYS entry, undefined for
 * one that may be anything (a consumer's own key).
 */
async function watchSettles(keys: readonly (string | undefined)[]) {
  const monitor = (await raw.monitor()) as Redis & {
    on(event: 'monitor', listener: (time: string, args: string[]) => void): void;
  };
  const calls: string[][] = [];
  monitor.on('monitor', (_time, args) => {
    if (!/^eval(sha)?$/i.test(args[0] ?? '') || args[2] !== String(keys.length)) return;
    if (keys.every((key, i) => key === undefined || args[3 + i] === key)) calls.push(args);
  });
  return { calls, stop: () => monitor.disconnect() };
}

/**
 * Consumes JOBS jobs with one slot each; every handler waits until all of them are held, then
 * they ack together and each checks, the moment its ack resolved, that Redis has it settled.
 */
async function ackAllAtOnce(
  broker: CompleteBroker,
  queue: string,
  settled: (d: Delivery) => Promise<boolean>,
) {
  const held: Delivery[] = [];
  const allHeld = deferred();
  const notSettled: string[] = [];
  const acked = deferred();
  let done = 0;
  const consumer = startConsumer(
    broker,
    queue,
    async (delivery) => {
      held.push(delivery);
      if (held.length === JOBS) allHeld.resolve();
      await allHeld.promise;
      await delivery.ack();
      if (!(await settled(delivery))) notSettled.push(delivery.messageId);
      if (++done === JOBS) acked.resolve();
    },
    JOBS,
  );
  await consumer.ready;
  await broker.publish(
    queue,
    Array.from({ length: JOBS }, (_, i) => ({ envelope: createEnvelope('test_job', { i }) })),
  );
  await acked.promise;
  await consumer.stop();
  return notSettled;
}

/** Per call: the jobs it settled (its ARGV after KEYS, minus fixed ARGV, in per-ack steps). */
function jobsIn(calls: string[][], numKeys: number, fixedArgs: number, perAck: number): number {
  return calls.reduce((sum, args) => sum + (args.length - 3 - numKeys - fixedArgs) / perAck, 0);
}

/**
 * Acks JOBS jobs at once (ackAllAtOnce) and checks each was settled when its ack resolved, that
 * MONITOR saw every ack in settle calls laid out as `layout` (KEYS, fixed ARGV, ARGV per ack),
 * in at most JOBS / 10 calls, and that the queue is empty after.
 */
async function expectBatchedAcks(
  broker: CompleteBroker,
  queue: string,
  watch: { calls: string[][]; stop: () => void },
  settled: (d: Delivery) => Promise<boolean>,
  layout: { numKeys: number; fixedArgs: number; perAck: number },
  annotate: (message: string) => Promise<unknown>,
) {
  try {
    const notSettled = await ackAllAtOnce(broker, queue, settled);
    expect(notSettled).toEqual([]);
    await eventually(
      async () => jobsIn(watch.calls, layout.numKeys, layout.fixedArgs, layout.perAck),
      (n) => n === JOBS,
      'every ack seen by MONITOR',
    );
    expect(watch.calls.length).toBeGreaterThan(0);
    expect(watch.calls.length).toBeLessThanOrEqual(JOBS / 10);
    await annotate(`${JOBS} acks in ${watch.calls.length} settle script calls`);
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, inFlight: 0 });
  } finally {
    watch.stop();
  }
}

describe('batched settles', () => {
  it(`redis-streams: ${JOBS} concurrent acks go out in far fewer than ${JOBS} script calls, each resolving once settled`, async ({
    annotate,
  }) => {
    const broker = await create('redis-streams');
    const queue = uniqueQueueName('batchack');
    const keys = queueKeys(PREFIX, queue);
    const watch = await watchSettles([keys.main, keys.delayed, keys.dead]);
    await expectBatchedAcks(
      broker,
      queue,
      watch,
      async (delivery) => {
        // Acked means no longer pending and deleted: no entry of the stream still holds the job.
        const entries = (await raw.xrange(keys.main, '-', '+')) as [string, string[]][];
        return !entries.some(([, fields]) => fields.some((f) => f.includes(delivery.messageId)));
      },
      // group, then per ack: entry id, 'ack'.
      { numKeys: 3, fixedArgs: 1, perAck: 2 },
      annotate,
    );
  });

  it(`redis-reliable: ${JOBS} concurrent acks go out in far fewer than ${JOBS} script calls, each resolving once settled`, async ({
    annotate,
  }) => {
    const broker = await create('redis-reliable');
    const queue = uniqueQueueName('batchack');
    const keys = queueKeys(PREFIX, queue);
    // KEYS[1] and KEYS[4] are the consumer's own (processing list, token set).
    const watch = await watchSettles([
      undefined,
      keys.leases,
      keys.leased,
      undefined,
      keys.delayed,
      keys.main,
      keys.dead,
    ]);
    await expectBatchedAcks(
      broker,
      queue,
      watch,
      async (delivery) => {
        // Acked means its lease record is gone (the script drops it with the processing copy).
        const leased = await raw.hvals(keys.leased);
        return !leased.includes(delivery.body);
      },
      // per ack: token, body, 'ack'.
      { numKeys: 7, fixedArgs: 0, perAck: 3 },
      annotate,
    );
  });

  it('redis-streams: a settle failing for one job of a batch rejects that job alone', async () => {
    const broker = await create('redis-streams');
    const queue = uniqueQueueName('batchfail');
    const keys = queueKeys(PREFIX, queue);
    const held: Delivery[] = [];
    const bothHeld = deferred();
    const release = deferred();
    const consumer = startConsumer(
      broker,
      queue,
      async (delivery) => {
        held.push(delivery);
        if (held.length === 2) bothHeld.resolve();
        await release.promise;
      },
      2,
    );
    try {
      await consumer.ready;
      await broker.publish(queue, [
        { envelope: createEnvelope('test_job', {}) },
        { envelope: createEnvelope('test_job', {}) },
      ]);
      await bothHeld.promise;
      // The dead-letter stream replaced by a string after the consumer's start-up check: the
      // dead letter's XADD fails inside the script, after the ack of the other job.
      await raw.set(keys.dead, 'not a stream');
      const [first, second] = held as [Delivery, Delivery];
      // Asked for in one tick, so they go out in one call: the dead letter first.
      const dead = first.deadLetter('test').then(
        () => 'resolved',
        (error: Error) => error.message,
      );
      const ack = second.ack();
      await expect(ack).resolves.toBeUndefined();
      expect(await dead).toMatch(/^WRONGTYPE/);
      // The ack stands; the failed dead letter's entry is still in the stream and pending (its
      // write comes before its ack), so XAUTOCLAIM brings it back: nothing is lost.
      expect(await raw.xlen(keys.main)).toBe(1);
      const pending = (await raw.xpending(keys.main, CONSUMER_GROUP)) as [number, ...unknown[]];
      expect(pending[0]).toBe(1);
    } finally {
      release.resolve();
      await consumer.stop();
      await raw.del(keys.dead);
    }
  });
});
