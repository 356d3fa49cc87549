import {
  type CompleteBroker,
  ConfigError,
  createEnvelope,
  type Delivery,
  type Envelope,
  parseEnv,
  silentLogger,
} from '@polyqueue/core';
import { deferred, eventually, uniqueQueueName } from '@polyqueue/testkit';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { drivers, kafkaEnvSchema, queueTopics } from '../src/index';
import { SupervisedConsumer } from '../src/supervised-consumer';
import { deleteWithPrefix, KAFKA_BROKERS, SERVER_HINT, testKafka } from './kafka-server';

const prefix = `pqunit${process.pid}`;
const env = {
  KAFKA_BROKERS,
  POLYQUEUE_PREFIX: prefix,
  KAFKA_SESSION_TIMEOUT_MS: '6000',
  KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
  KAFKA_REBALANCE_TIMEOUT_MS: '15000',
};

describe('KAFKA_* configuration', () => {
  it('has working defaults', () => {
    const config = parseEnv(kafkaEnvSchema, {});
    expect(config.KAFKA_BROKERS).toEqual(['127.0.0.1:9092']);
    expect(config.KAFKA_PARTITIONS).toBe(3);
    expect(config.POLYQUEUE_PREFIX).toBe('polyqueue');
  });

  it('takes a comma-separated list of host:port', () => {
    const config = parseEnv(kafkaEnvSchema, { KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9093' });
    expect(config.KAFKA_BROKERS).toEqual(['kafka-1:9092', 'kafka-2:9093']);
  });

  it.each(['kafka://127.0.0.1:9092', '127.0.0.1', 'a:9092,,b', ''])(
    'rejects KAFKA_BROKERS=%j naming the variable',
    (value) => {
      expect(() => parseEnv(kafkaEnvSchema, { KAFKA_BROKERS: value })).toThrow(ConfigError);
      expect(() => parseEnv(kafkaEnvSchema, { KAFKA_BROKERS: value })).toThrow(
        /KAFKA_BROKERS: must be a comma-separated/,
      );
    },
  );

  it('rejects a prefix Kafka cannot use in a topic name', () => {
    expect(() => parseEnv(kafkaEnvSchema, { POLYQUEUE_PREFIX: 'poly queue' })).toThrow(/POLYQUEUE_PREFIX/);
  });
});

describe('kafka driver against a real broker', () => {
  let broker: CompleteBroker;
  let admin: Admin;
  const stops: Array<() => Promise<void>> = [];

  async function connect(extra: Record<string, string> = {}): Promise<CompleteBroker> {
    const driver = drivers.kafka!;
    const b = await driver.createBroker(parseEnv(driver.envSchema, { ...env, ...extra }), {
      logger: silentLogger(),
    });
    try {
      await b.ping();
    } catch (error) {
      throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
    }
    return b;
  }

  function consume(
    b: CompleteBroker,
    queue: string,
    handler: (d: Delivery) => Promise<void>,
    concurrency: number,
  ) {
    const controller = new AbortController();
    const ready = deferred();
    const done = b.consume(queue, handler, {
      concurrency,
      signal: controller.signal,
      onReady: ready.resolve,
    });
    const stop = async () => {
      controller.abort();
      await done;
    };
    stops.push(stop);
    return { ready: ready.promise, stop };
  }

  function job(payload: Record<string, unknown>): Envelope {
    return createEnvelope('test_job', payload);
  }

  function payloadOf(d: Delivery): Record<string, unknown> {
    return JSON.parse(d.body).payload;
  }

  async function committed(groupId: string, topic: string): Promise<number[]> {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return entry!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
  }

  beforeAll(async () => {
    broker = await connect({ KAFKA_PARTITIONS: '1' });
    admin = testKafka().admin();
    await admin.connect();
  });

  afterAll(async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
    await broker?.close();
    await admin?.disconnect();
    await deleteWithPrefix(prefix);
  });

  it('creates the queue, retry and dead topics with their partitions and retention', async () => {
    const queue = uniqueQueueName('topics');
    const wide = await connect({ KAFKA_PARTITIONS: '4' });
    try {
      await wide.publish(queue, [{ envelope: job({}) }]);
      const names = queueTopics(prefix, queue);
      const { topics } = await admin.fetchTopicMetadata({ topics: [names.main, names.retry, names.dead] });
      const partitions = Object.fromEntries(topics.map((t) => [t.name, t.partitions.length]));
      expect(partitions).toEqual({ [names.main]: 4, [names.retry]: 4, [names.dead]: 1 });
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: names.dead, configNames: ['retention.ms'] }],
      });
      expect(configs.resources[0]!.configEntries[0]!.configValue).toBe('-1');
    } finally {
      await wide.close();
    }
  });

  it('commits an offset only when every message below it is settled (per-partition watermark)', async () => {
    const queue = uniqueQueueName('watermark');
    const names = queueTopics(prefix, queue);
    const gate = deferred();
    const started: string[] = [];
    const c = consume(
      broker,
      queue,
      async (d) => {
        const { name } = payloadOf(d) as { name: string };
        started.push(name);
        if (name === 'slow') await gate.promise;
        await d.ack();
      },
      2,
    );
    await c.ready;
    await broker.publish(queue, [{ envelope: job({ name: 'slow' }) }, { envelope: job({ name: 'fast' }) }]);
    // The fast one (offset 1) is acked while the slow one (offset 0) runs: nothing committed yet.
    await eventually(
      () => broker.stats(queue),
      (s) => s.inFlight === 1 && s.ready === 0,
      'fast acked, slow running',
    );
    expect(started).toEqual(['slow', 'fast']);
    expect(await committed(names.group, names.main)).toEqual([-1]);
    gate.resolve();
    await eventually(
      () => committed(names.group, names.main),
      (o) => o[0] === 2,
      'offset 2 committed',
    );
    await c.stop();
  });

  it('resolves ack() without waiting for a commit, and coalesces commits (one in flight per partition)', async () => {
    const queue = uniqueQueueName('coalesce');
    const names = queueTopics(prefix, queue);
    const wide = await connect({ KAFKA_PARTITIONS: '3' });
    // Hold every offset commit of this process until the gate opens.
    const gate = deferred();
    const original = SupervisedConsumer.prototype.commit;
    const commits = vi.spyOn(SupervisedConsumer.prototype, 'commit').mockImplementation(async function (
      this: SupervisedConsumer,
      partition,
      offset,
    ) {
      await gate.promise;
      return original.call(this, partition, offset);
    });
    try {
      const total = 60;
      let acked = 0;
      const allAcked = deferred();
      const c = consume(
        wide,
        queue,
        async (d) => {
          await d.ack();
          if (++acked === total) allAcked.resolve();
        },
        8,
      );
      await c.ready;
      await wide.publish(
        queue,
        Array.from({ length: total }, (_, i) => ({ envelope: job({ i }), key: `k${i}` })),
      );
      // Every ack resolved while no commit could land: acks do not wait for commits...
      await allAcked.promise;
      // ...and with each partition's first commit still pending, no second one was started.
      expect(commits.mock.calls.length).toBeLessThanOrEqual(3);
      gate.resolve();
      await eventually(
        () => committed(names.group, names.main),
        (o) => o.reduce((a, b) => a + b, 0) === total,
        `offsets of all ${total} jobs committed`,
      );
      // The settles queued behind each pending commit went out as one follow-up commit.
      expect(commits.mock.calls.length).toBeLessThanOrEqual(6);
      await c.stop();
    } finally {
      gate.resolve();
      commits.mockRestore();
      await wide.close();
    }
  });

  it('commits every settled offset before consume() resolves on stop', async () => {
    const queue = uniqueQueueName('drain-commit');
    const names = queueTopics(prefix, queue);
    const total = 20;
    let acked = 0;
    const allAcked = deferred();
    const c = consume(
      broker,
      queue,
      async (d) => {
        await d.ack();
        if (++acked === total) allAcked.resolve();
      },
      4,
    );
    await c.ready;
    await broker.publish(
      queue,
      Array.from({ length: total }, (_, i) => ({ envelope: job({ i }) })),
    );
    await allAcked.promise;
    await c.stop();
    // No waiting: the drain's final commit has landed when consume() resolved.
    expect(await committed(names.group, names.main)).toEqual([total]);
  });

  it('runs different keys in parallel and one key in order, with concurrency > 1', async () => {
    const queue = uniqueQueueName('keys');
    const gate = deferred();
    const seen: string[] = [];
    const c = consume(
      broker,
      queue,
      async (d) => {
        const { key, i } = payloadOf(d) as { key: string; i: number };
        seen.push(`${key}${i}`);
        if (key === 'a' && i === 0) await gate.promise;
        await d.ack();
      },
      4,
    );
    await c.ready;
    const batch = [];
    for (let i = 0; i < 3; i++) {
      batch.push({ envelope: job({ key: 'a', i }), key: 'a' });
      batch.push({ envelope: job({ key: 'b', i }), key: 'b' });
    }
    await broker.publish(queue, batch);
    // b runs to the end while a0 blocks; a1 must not start before a0 is done.
    await eventually(
      async () => [...seen],
      (s) => s.includes('b2'),
      'all of key b',
    );
    expect(seen.filter((s) => s.startsWith('a'))).toEqual(['a0']);
    gate.resolve();
    await eventually(
      async () => [...seen],
      (s) => s.length === 6,
      'all six',
    );
    expect(seen.filter((s) => s.startsWith('a'))).toEqual(['a0', 'a1', 'a2']);
    expect(seen.filter((s) => s.startsWith('b'))).toEqual(['b0', 'b1', 'b2']);
    await c.stop();
  });

  it('answers stats of one queue while another queue is being created on the same broker', async () => {
    // kafkajs keeps one metadata cache per admin client; a topic-metadata read of a topic it does
    // not know yet replaced it with that topic alone, and an offset read of another topic that
    // was between its two requests threw "Cannot destructure property 'partitions' of
    // 'low.pop(...)'" (kafkajs#461): 16 of 897 reads did while 20 queues were created.
    const queue = uniqueQueueName('statsbusy');
    await broker.publish(queue, [{ envelope: job({}) }]);
    const failures: string[] = [];
    const answers: number[] = [];
    let creating = true;
    const reader = async () => {
      while (creating) {
        await broker.stats(queue).then(
          (s) => answers.push(s.ready),
          (error: Error) => failures.push(error.message),
        );
      }
    };
    const readers = [reader(), reader()];
    try {
      for (let i = 0; i < 12; i++)
        await broker.publish(uniqueQueueName('statsnew'), [{ envelope: job({ i }) }]);
    } finally {
      creating = false;
      await Promise.all(readers);
    }
    expect(failures).toEqual([]);
    expect(answers.length).toBeGreaterThan(0);
    expect(new Set(answers)).toEqual(new Set([1]));
  });

  it('redrives all dead letters and purges nothing afterwards', async () => {
    const queue = uniqueQueueName('redriveall');
    const envelopes = [job({ n: 1 }), job({ n: 2 }), job({ n: 3 })];
    let redriven = false;
    const acked: Delivery[] = [];
    const c = consume(
      broker,
      queue,
      async (d) => {
        if (!redriven) return d.deadLetter('not yet');
        acked.push(d);
        await d.ack();
      },
      1,
    );
    await c.ready;
    await broker.publish(
      queue,
      envelopes.map((envelope) => ({ envelope })),
    );
    await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 3,
      'three dead letters',
    );
    const dead = broker.deadLetters(queue);
    expect((await dead.list(2)).length).toBe(2);
    expect((await dead.list(10)).map((d) => d.id)).toEqual(envelopes.map((e) => e.id));
    redriven = true;
    expect(await dead.redrive('all')).toBe(3);
    await eventually(
      async () => acked.length,
      (n) => n === 3,
      'three redriven jobs',
    );
    expect(acked.every((d) => d.attempt === 1)).toBe(true);
    await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 0 && s.ready === 0,
      'no dead letters',
    );
    expect(await dead.purge()).toBe(0);
    await c.stop();
  });

  it('retries an event in the subscriber with attempt + 1, holding its offset', async () => {
    const topic = uniqueQueueName('evretry');
    const attempts: number[] = [];
    const controller = new AbortController();
    const ready = deferred();
    const done = broker.subscribe(
      topic,
      'g1',
      async (d) => {
        attempts.push(d.attempt);
        if (d.attempt === 1) await d.retry(200);
        else await d.ack();
      },
      { concurrency: 2, signal: controller.signal, onReady: ready.resolve },
    );
    stops.push(async () => {
      controller.abort();
      await done;
    });
    await ready.promise;
    // A new group starts at the end of the topic, committed before onReady.
    const [entry] = await admin.fetchOffsets({
      groupId: `${prefix}.events.${topic}.g1`,
      topics: [`${prefix}.events.${topic}`],
    });
    expect(entry!.partitions.map((p) => p.offset)).toEqual(['0']);
    await broker.publishEvent(topic, createEnvelope('job.succeeded', {}));
    await eventually(
      async () => [...attempts],
      (a) => a.length === 2,
      'the retried event',
    );
    expect(attempts).toEqual([1, 2]);
    controller.abort();
    await done;
  });
});
