/**
 * The issue's check, as deployed: two API replicas, each with its own handles on one real state
 * store (a sqlite file, Redis, MySQL) and on one real broker, run core's Scheduler on the real
 * clock and publish through the API's enqueue path (publishFire). A consumer counts the jobs the
 * broker hands out per tick of an everyMs schedule: over 20 ticks, exactly one each, none missed.
 *
 * Each backend is kept apart from what other tests and processes keep in the shared servers (a
 * scheduler fires every schedule of its store): Redis database 9, MySQL tables prefixed
 * pqschedreplicas, broker queues under that prefix, sqlite files in a temporary folder.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv, createScheduleStore, createStateStore } from '@polyqueue/brokers';
import {
  type CompleteBroker,
  decodeEnvelope,
  type Schedule,
  Scheduler,
  type ScheduleStore,
  type StateStore,
  silentLogger,
} from '@polyqueue/core';
import { queueForJobType } from '@polyqueue/jobs';
import { eventually, LOCAL_SERVERS, startConsumer } from '@polyqueue/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { publishFire } from '../src/scheduling';

const EVERY_MS = 200;
const TICKS = 20;
const PREFIX = 'pqschedreplicas';
const dir = mkdtempSync(join(tmpdir(), 'pq-schedule-replicas-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function redisDatabase(url: string, db: number): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.href;
}

const stateStores: Record<string, { url: () => string; hint: string }> = {
  sqlite: { url: () => `sqlite:${join(dir, `state-${randomUUID()}.db`)}`, hint: 'a sqlite file' },
  redis: {
    url: () => redisDatabase(LOCAL_SERVERS.REDIS_URL, 9),
    hint: `Redis at ${LOCAL_SERVERS.REDIS_URL} (scripts/services/README.md)`,
  },
  mysql: {
    url: () => `${LOCAL_SERVERS.MYSQL_URL}?prefix=${PREFIX}`,
    hint: `MariaDB at ${LOCAL_SERVERS.MYSQL_URL} (scripts/services/README.md)`,
  },
};

const brokers: Record<string, { env: () => Record<string, string>; hint: string }> = {
  sqlite: {
    env: () => ({ BROKER: 'sqlite', SQLITE_PATH: join(dir, `queue-${randomUUID()}.db`) }),
    hint: 'a sqlite file',
  },
  'redis-streams': {
    env: () => ({ BROKER: 'redis-streams', REDIS_URL: LOCAL_SERVERS.REDIS_URL, POLYQUEUE_PREFIX: PREFIX }),
    hint: `Redis at ${LOCAL_SERVERS.REDIS_URL} (scripts/services/README.md)`,
  },
  mysql: {
    env: () => ({ BROKER: 'mysql', MYSQL_URL: LOCAL_SERVERS.MYSQL_URL, POLYQUEUE_PREFIX: PREFIX }),
    hint: `MariaDB at ${LOCAL_SERVERS.MYSQL_URL} (scripts/services/README.md)`,
  },
};

async function reach<T>(hint: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (error) {
    throw new Error(`cannot reach ${hint}: ${(error as Error).message}`);
  }
}

/** One API replica's handles: its own connections, as a second process would have. */
interface Replica {
  state: StateStore;
  schedules: ScheduleStore;
  broker: CompleteBroker;
  scheduler: Scheduler;
}

const pairs = Object.keys(stateStores).flatMap((state) =>
  Object.keys(brokers).map((broker) => [state, broker]),
);

describe.each(pairs)('a schedule on a %s state store, published to %s', (stateName, brokerName) => {
  it(`fires once per tick over ${TICKS} ticks with 2 replicas`, { timeout: 90_000 }, async () => {
    const state = stateStores[stateName]!;
    const target = brokers[brokerName]!;
    const stateUrl = state.url();
    const brokerEnv = target.env();
    const name = `replicas-${randomUUID()}`;
    const job = { type: 'send_email', payload: { to: 'ops@example.com', subject: 'tick', body: name } };
    const queue = queueForJobType.send_email;
    const replicas: Replica[] = [];
    const consumerBroker = await reach(target.hint, () => createBrokerFromEnv(brokerEnv));
    const lookup = await reach(state.hint, () => createStateStore(stateUrl));
    // Per tick (its ISO time), the job ids the broker handed out.
    const byTick = new Map<string, string[]>();
    const consumer = startConsumer(consumerBroker, queue, async (delivery) => {
      const decoded = decodeEnvelope(delivery.body, delivery.messageId);
      const id = decoded.ok ? decoded.envelope.id : delivery.messageId;
      const key = (await lookup.getJob(id))?.idempotencyKey;
      // Jobs of other schedules or of an earlier run of this test are not counted.
      if (key?.startsWith(`schedule:${name}:`)) {
        const tick = key.slice(`schedule:${name}:`.length);
        byTick.set(tick, [...(byTick.get(tick) ?? []), id]);
      }
      await delivery.ack();
    });
    try {
      await consumer.ready;
      for (let i = 0; i < 2; i++) {
        const replicaState = await reach(state.hint, () => createStateStore(stateUrl));
        const schedules = await reach(state.hint, () => createScheduleStore(stateUrl));
        const broker = await reach(target.hint, () => createBrokerFromEnv(brokerEnv));
        const scheduler = new Scheduler({
          store: schedules,
          claims: replicaState,
          publish: publishFire({
            broker,
            jobs: replicaState,
            newId: randomUUID,
            now: () => new Date(),
            logger: silentLogger(),
          }),
          logger: silentLogger(),
          // Passes well inside a tick, as the API's 250 ms passes are inside its 1 s minimum.
          intervalMs: 20,
        });
        replicas.push({ state: replicaState, schedules, broker, scheduler });
      }
      const schedule: Schedule = {
        name,
        everyMs: EVERY_MS,
        job,
        catchUp: false,
        createdAt: new Date().toISOString(),
      };
      await replicas[0]!.schedules.put(schedule);
      for (const r of replicas) r.scheduler.start();

      await eventually(
        async () => byTick.size,
        (n) => n >= TICKS + 1,
        `${TICKS + 1} ticks consumed`,
        30_000,
      );
      await replicas[1]!.schedules.delete(name);
      await Promise.all(replicas.map((r) => r.scheduler.stop()));
      await eventually(
        () => consumerBroker.stats(queue),
        (s) => s.ready === 0 && s.inFlight === 0,
        'every published job consumed',
        30_000,
      );

      const ticks = [...byTick.keys()].sort();
      const perTick = ticks.map((t) => byTick.get(t)!.length);
      expect(
        perTick.filter((n) => n !== 1),
        `jobs per tick: ${JSON.stringify(Object.fromEntries(byTick))}`,
      ).toEqual([]);
      const gaps = ticks.slice(1).map((t, i) => Date.parse(t) - Date.parse(ticks[i]!));
      expect(
        gaps.filter((gap) => gap !== EVERY_MS),
        `ticks fired: ${ticks.join(' ')}`,
      ).toEqual([]);
      expect(ticks.length).toBeGreaterThanOrEqual(TICKS);
    } finally {
      await Promise.all(replicas.map((r) => r.scheduler.stop()));
      await consumer.stop();
      await replicas[0]?.schedules.delete(name).catch(() => false);
      await Promise.all(
        replicas.flatMap((r) => [r.state.close?.(), r.schedules.close?.(), r.broker.close()]),
      );
      await Promise.all([lookup.close?.(), consumerBroker.close()]);
    }
  });
});
