import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MemoryScheduleStore,
  type ScheduledFire,
  Scheduler,
  type StateStore,
  silentLogger,
} from '@polyqueue/core';
import { afterAll, describe, expect, it } from 'vitest';
import { createScheduleStore, createStateStore } from '../src/state-registry';

const dir = mkdtempSync(join(tmpdir(), 'pq-schedules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stateUrls = {
  sqlite: () => `sqlite:${join(dir, 'state.db')}`,
  redis: () => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
};

const scheduleUrls = {
  ...stateUrls,
  mysql: () => process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
};

describe.each(Object.entries(scheduleUrls))('the schedule store on %s', (_name, url) => {
  it('is shared by two connections: put, list, replace, delete', async () => {
    const [a, b] = [await createScheduleStore(url()), await createScheduleStore(url())];
    try {
      const name = `s-${randomUUID()}`;
      const job = { type: 'send_email', payload: { to: 'a@example.com' } };
      await a.put({ name, cron: '0 9 * * *', timezone: 'Asia/Tokyo', job });
      expect((await b.list()).find((s) => s.name === name)).toEqual({
        name,
        cron: '0 9 * * *',
        timezone: 'Asia/Tokyo',
        job,
      });
      await b.put({ name, everyMs: 5000, job, catchUp: false });
      expect((await a.list()).find((s) => s.name === name)).toEqual({
        name,
        everyMs: 5000,
        job,
        catchUp: false,
      });
      expect(await a.delete(name)).toBe(true);
      expect(await b.delete(name)).toBe(false);
      expect((await b.list()).some((s) => s.name === name)).toBe(false);
    } finally {
      await Promise.all([a.close?.(), b.close?.()]);
    }
  });
});

/**
 * The check: two replicas, each with its own connection to one real state store, run
 * the scheduler pass at every tick of an everyMs=1000 schedule at the same moment (the clock is
 * injected, so 20 ticks take no 20 s); each tick is published once between them.
 */
describe.each(Object.entries(stateUrls))('schedules on a shared %s state store', (_name, url) => {
  it('publishes each of 20 ticks exactly once across two replicas', async () => {
    const stores: StateStore[] = [await createStateStore(url()), await createStateStore(url())];
    try {
      // A fresh name: the store keeps done ticks for days.
      const name = `every-second-${randomUUID()}`;
      const schedules = new MemoryScheduleStore([
        { name, everyMs: 1000, job: { type: 'send_email', payload: {} }, catchUp: false },
      ]);
      const base = Math.ceil(Date.now() / 1000) * 1000 + 250;
      const clock = { now: new Date(base) };
      const published: ScheduledFire[] = [];
      const replicas = stores.map(
        (claims) =>
          new Scheduler({
            store: schedules,
            claims,
            publish: async (fire) => {
              published.push(fire);
            },
            logger: silentLogger(),
            now: () => clock.now,
          }),
      );
      await Promise.all(replicas.map((r) => r.runOnce()));
      for (let tick = 1; tick <= 20; tick++) {
        clock.now = new Date(base + tick * 1000);
        // Both replicas at once, twice: the second passes find the tick done.
        await Promise.all(replicas.map((r) => r.runOnce()));
        await Promise.all(replicas.map((r) => r.runOnce()));
      }
      const keys = published.map((fire) => fire.fireTime.getTime());
      expect(keys).toHaveLength(20);
      expect(new Set(keys).size).toBe(20);
      expect(Math.min(...keys)).toBe(base - 250 + 1000);
    } finally {
      await Promise.all(stores.map((store) => store.close?.()));
    }
  });
});
