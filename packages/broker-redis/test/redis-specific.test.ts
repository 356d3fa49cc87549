import { drivers, queueKeys } from '@polyqueue/broker-redis';
import { type CompleteBroker, ConfigError, createEnvelope, parseEnv } from '@polyqueue/core';
import { eventually, HandlerSpy, startConsumer, uniqueQueueName } from '@polyqueue/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeHandWrittenEntry, createTestBroker } from './redis-brokers';
import { rawClient } from './redis-server';

const PREFIX = 'pqtest';
const env = {
  POLYQUEUE_PREFIX: PREFIX,
  REDIS_LEASE_MS: '1000',
  REDIS_BLOCK_MS: '300',
  REDIS_POLL_MS: '100',
};
const raw = rawClient();

function create(name: string, extra: Record<string, string> = {}): Promise<CompleteBroker> {
  return createTestBroker(name, { ...env, ...extra });
}

afterAll(() => raw.disconnect());

describe('redis driver configuration', () => {
  it('names REDIS_URL when it is malformed', () => {
    expect(() => parseEnv(drivers['redis-list']!.envSchema, { REDIS_URL: 'http://x' })).toThrow(ConfigError);
    expect(() => parseEnv(drivers['redis-list']!.envSchema, { REDIS_URL: 'nope' })).toThrow(/REDIS_URL/);
  });

  it("keeps every key of a queue in the main key's cluster slot", () => {
    const keys = queueKeys('polyqueue', 'email');
    expect(keys.main).toBe('polyqueue:email');
    for (const key of [keys.low, keys.delayed, keys.dead, keys.leases, keys.processing('c1')]) {
      expect(key.startsWith('{polyqueue:email}:')).toBe(true);
    }
    expect(() => queueKeys('polyqueue', 'a{b}')).toThrow(/braces/);
  });
});

describe('redis-streams specifics', () => {
  let broker: CompleteBroker;
  beforeAll(async () => {
    broker = await create('redis-streams', { REDIS_MAX_DELIVERIES: '2' });
  });
  afterAll(() => broker?.close());

  it('accepts an entry in the classic producer shape (fields type + payload)', async () => {
    const queue = uniqueQueueName('classic');
    const { id, envelope } = await consumeHandWrittenEntry(broker, raw, PREFIX, queue, [
      'type',
      'send_email',
      'payload',
      '{"to":"a@example.com"}',
    ]);
    expect(envelope).toMatchObject({ id, type: 'send_email', payload: { to: 'a@example.com' } });
  });

  it('moves an entry delivered more often than REDIS_MAX_DELIVERIES to the dead letters', async () => {
    const queue = uniqueQueueName('poison');
    const envelope = createEnvelope('test_job', {});
    await broker.publish(queue, [{ envelope }]);
    // Two consumers in turn take the entry and never settle it, like workers killed by the job;
    // the second gets it through XAUTOCLAIM once the first one's lease ran out.
    for (let i = 0; i < 2; i++) {
      const spy = new HandlerSpy(10_000);
      const c = startConsumer(
        broker,
        queue,
        spy.handler(`c${i}`, async () => {}),
        1,
      );
      await c.ready;
      await spy.waitFor(() => spy.received.length === 1, `delivery ${i + 1}`);
      await c.stop();
    }
    // The third claim is over the limit: the entry goes to the dead letters, not to a handler.
    const third = new HandlerSpy();
    const c = startConsumer(broker, queue, third.handler(), 1);
    await c.ready;
    await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 1,
      'the poison entry in the dead letters',
      15_000,
    );
    await c.stop();
    expect(third.received).toEqual([]);
    expect(await broker.stats(queue)).toMatchObject({ dead: 1, ready: 0, inFlight: 0 });
    const [dead] = await broker.deadLetters(queue).list(1);
    expect(dead!.reason).toMatch(/^delivered 3 times without being settled \(limit 2\)/);
    expect(JSON.parse(dead!.body).id).toBe(envelope.id);
  });
});

describe('redis-reliable specifics', () => {
  let broker: CompleteBroker;
  beforeAll(async () => {
    broker = await create('redis-reliable');
  });
  afterAll(() => broker?.close());

  it('returns an expired lease once, however many workers recover at the same time', async () => {
    const queue = uniqueQueueName('race');
    const keys = queueKeys(PREFIX, queue);
    // A consumer that leased a job and stopped heart-beating (as a crashed one does).
    const body = JSON.stringify(createEnvelope('test_job', {}));
    await raw
      .multi()
      .rpush(keys.processing('dead1'), body)
      .zadd(keys.leases, Date.now() - 1, 'dead1:1')
      .hset(keys.leased, 'dead1:1', body)
      .sadd(keys.tokens('dead1'), 'dead1:1')
      .zadd(keys.consumers, Date.now() - 1, 'dead1')
      .exec();
    const spy = new HandlerSpy();
    const consumers = Array.from({ length: 4 }, (_, i) =>
      startConsumer(broker, queue, spy.handler(`c${i}`), 2),
    );
    await Promise.all(consumers.map((c) => c.ready));
    await spy.waitFor(() => spy.received.length === 1, 'the recovered job');
    const marker = createEnvelope('test_job', { marker: true });
    await broker.publish(queue, [{ envelope: marker }]);
    await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
    await Promise.all(consumers.map((c) => c.stop()));
    expect(spy.received.length).toBe(2);
    expect(await raw.exists(keys.processing('dead1'), keys.tokens('dead1'))).toBe(0);
    expect(await broker.stats(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });
});

describe('redis-list specifics', () => {
  // A long block: a low job must wake an idle consumer at once, not after the timeout.
  const BLOCK_MS = 4_000;
  let broker: CompleteBroker;
  beforeAll(async () => {
    broker = await create('redis-list', { REDIS_BLOCK_MS: String(BLOCK_MS) });
  });
  afterAll(() => broker?.close());

  /** Ids of the redis-list consumer connections the server sees. */
  async function consumerClients(): Promise<Map<string, string>> {
    const list = (await raw.client('LIST')) as string;
    const clients = new Map<string, string>();
    for (const line of list.split('\n')) {
      const fields = Object.fromEntries(line.split(' ').map((f) => f.split('=', 2) as [string, string]));
      if (fields.name === 'polyqueue:redis-list-consumer') clients.set(fields.id!, fields.cmd ?? '');
    }
    return clients;
  }

  it('waits in BLPOP on the main and the low list, so a low job wakes an idle consumer', async () => {
    const queue = uniqueQueueName('blpop-low');
    const before = await consumerClients();
    const spy = new HandlerSpy(BLOCK_MS / 2);
    const c = startConsumer(broker, queue, spy.handler(), 1);
    await c.ready;
    const mine = await eventually(
      async () => [...(await consumerClients())].filter(([id]) => !before.has(id)),
      (clients) => clients.some(([, cmd]) => cmd === 'blpop'),
      'the consumer waiting in BLPOP',
      10_000,
    );
    expect(mine.length).toBeGreaterThan(0);
    const low = createEnvelope('test_job', { low: true });
    await broker.publish(queue, [{ envelope: low, priority: 'low' }]);
    // Within half the block timeout: the blocked BLPOP returned it, no re-poll did.
    await spy.waitFor(() => spy.count(low.id) === 1, 'the low job');
    // Wake the last BLPOP so stopping does not wait for its timeout.
    const stopping = c.stop();
    await broker.publish(queue, [{ envelope: createEnvelope('test_job', { wake: true }) }]);
    await stopping;
    expect(await broker.stats(queue)).toMatchObject({ inFlight: 0, delayed: 0, dead: 0 });
  });

  it('keeps consuming when the connection of a waiting BLPOP is killed', async () => {
    const queue = uniqueQueueName('blpop-kill');
    const before = await consumerClients();
    const spy = new HandlerSpy(15_000);
    const c = startConsumer(broker, queue, spy.handler(), 2);
    await c.ready;
    const blocked = await eventually(
      async () => [...(await consumerClients())].filter(([id, cmd]) => !before.has(id) && cmd === 'blpop'),
      (clients) => clients.length > 0,
      'the consumer waiting in BLPOP',
      10_000,
    );
    for (const [id] of blocked) await raw.client('KILL', 'ID', id);
    const after = createEnvelope('test_job', { afterKill: true });
    await broker.publish(queue, [{ envelope: after }]);
    await spy.waitFor(() => spy.count(after.id) === 1, 'a job published after the kill');
    const stopping = c.stop();
    await broker.publish(queue, [{ envelope: createEnvelope('test_job', { wake: true }) }]);
    await stopping;
  });
});
