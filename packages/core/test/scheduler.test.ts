import { describe, expect, it } from 'vitest';
import { MemoryIdempotencyStore } from '../src/idempotency';
import { silentLogger } from '../src/logger';
import { type ScheduledFire, Scheduler, scheduleKey } from '../src/scheduler';
import {
  latestTick,
  MemoryScheduleStore,
  nextTick,
  type Schedule,
  type ScheduleError,
  validateScheduleTiming,
} from '../src/schedules';

const job = { type: 'send_email', payload: {} };

describe('schedule ticks', () => {
  it('reads a cron expression in its time zone', () => {
    // 09:00 in Tokyo is 00:00 UTC.
    const s: Schedule = { name: 'daily', cron: '0 9 * * *', timezone: 'Asia/Tokyo', job };
    expect(nextTick(s, new Date('2026-03-01T12:00:00Z')).toISOString()).toBe('2026-03-02T00:00:00.000Z');
    expect(latestTick(s, new Date('2026-03-01T12:00:00Z'))?.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    // A tick exactly at now is the due one, not the next.
    expect(latestTick(s, new Date('2026-03-02T00:00:00Z'))?.toISOString()).toBe('2026-03-02T00:00:00.000Z');
  });

  it('reads a cron expression in UTC without a time zone, across a DST change elsewhere', () => {
    const utc: Schedule = { name: 'u', cron: '30 2 * * *', job };
    expect(nextTick(utc, new Date('2026-03-29T00:00:00Z')).toISOString()).toBe('2026-03-29T02:30:00.000Z');
    // Berlin moves to summer time on 2026-03-29: 10:00 local is 09:00 UTC before, 08:00 after.
    const berlin: Schedule = { name: 'b', cron: '0 10 * * *', timezone: 'Europe/Berlin', job };
    expect(nextTick(berlin, new Date('2026-03-28T00:00:00Z')).toISOString()).toBe('2026-03-28T09:00:00.000Z');
    expect(nextTick(berlin, new Date('2026-03-29T00:00:00Z')).toISOString()).toBe('2026-03-29T08:00:00.000Z');
  });

  it('puts everyMs ticks on multiples of the period since the epoch, alike on every replica', () => {
    const s: Schedule = { name: 'e', everyMs: 5000, job };
    expect(nextTick(s, new Date(12_345)).getTime()).toBe(15_000);
    expect(latestTick(s, new Date(12_345))?.getTime()).toBe(10_000);
    expect(latestTick(s, new Date(15_000))?.getTime()).toBe(15_000);
  });

  it('names the wrong field', () => {
    const field = (s: Schedule) => {
      try {
        validateScheduleTiming(s);
        return undefined;
      } catch (error) {
        return (error as ScheduleError).field;
      }
    };
    expect(field({ name: 'a', cron: 'not a cron', job })).toBe('cron');
    expect(field({ name: 'a', cron: '* * * * *', timezone: 'Mars/Olympus', job })).toBe('timezone');
    expect(field({ name: 'a', everyMs: 999, job })).toBe('everyMs');
    expect(field({ name: 'a', job })).toBe('cron');
    expect(field({ name: 'a', cron: '* * * * *', everyMs: 1000, job })).toBe('cron');
    expect(field({ name: 'a b', everyMs: 1000, job })).toBe('name');
    expect(field({ name: 'a', cron: '*/5 * * * *', timezone: 'Asia/Tokyo', job })).toBeUndefined();
  });
});

function replica(store: MemoryScheduleStore, claims: MemoryIdempotencyStore, clock: { now: Date }) {
  const fires: ScheduledFire[] = [];
  const scheduler = new Scheduler({
    store,
    claims,
    publish: async (fire) => {
      fires.push(fire);
    },
    logger: silentLogger(),
    now: () => clock.now,
  });
  return { scheduler, fires };
}

describe('Scheduler', () => {
  it('fires each tick once across two replicas sharing the claims', async () => {
    const store = new MemoryScheduleStore([{ name: 'e', everyMs: 1000, job, catchUp: false }]);
    const claims = new MemoryIdempotencyStore();
    const clock = { now: new Date(100_500) };
    const a = replica(store, claims, clock);
    const b = replica(store, claims, clock);
    await Promise.all([a.scheduler.runOnce(), b.scheduler.runOnce()]);
    for (let t = 1; t <= 20; t++) {
      clock.now = new Date(100_500 + t * 1000);
      await Promise.all([a.scheduler.runOnce(), b.scheduler.runOnce()]);
      // A second pass within the same tick fires nothing.
      await Promise.all([a.scheduler.runOnce(), b.scheduler.runOnce()]);
    }
    const keys = [...a.fires, ...b.fires].map((f) => f.key).sort();
    expect(keys).toHaveLength(20);
    expect(new Set(keys).size).toBe(20);
    expect(keys[0]).toBe(scheduleKey('e', new Date(101_000)));
  });

  it('after downtime fires the latest missed tick once with catchUp, none without', async () => {
    const claims = new MemoryIdempotencyStore();
    const store = new MemoryScheduleStore([
      { name: 'yes', cron: '0 * * * *', job, createdAt: '2026-01-01T00:00:00Z' },
      { name: 'no', cron: '0 * * * *', job, catchUp: false },
    ]);
    // Down from 10:30 to 13:20: the 11:00, 12:00 and 13:00 ticks were missed.
    const clock = { now: new Date('2026-05-01T13:20:00Z') };
    const r = replica(store, claims, clock);
    await r.scheduler.runOnce();
    await r.scheduler.runOnce();
    expect(r.fires.map((f) => f.key)).toEqual([scheduleKey('yes', new Date('2026-05-01T13:00:00Z'))]);
    // A replica starting after it sees the catch-up tick done.
    const late = replica(store, claims, clock);
    await late.scheduler.runOnce();
    expect(late.fires).toEqual([]);
    // Both fire at the next tick, once between them.
    clock.now = new Date('2026-05-01T14:00:01Z');
    await Promise.all([r.scheduler.runOnce(), late.scheduler.runOnce()]);
    expect(
      [...r.fires, ...late.fires]
        .map((f) => f.key)
        .slice(1)
        .sort(),
    ).toEqual([
      scheduleKey('no', new Date('2026-05-01T14:00:00Z')),
      scheduleKey('yes', new Date('2026-05-01T14:00:00Z')),
    ]);
  });

  it('does not catch up on a tick before the schedule was created', async () => {
    const store = new MemoryScheduleStore([
      { name: 'new', cron: '0 0 * * *', job, createdAt: '2026-05-01T13:00:00Z' },
    ]);
    const r = replica(store, new MemoryIdempotencyStore(), { now: new Date('2026-05-01T13:20:00Z') });
    await r.scheduler.runOnce();
    expect(r.fires).toEqual([]);
  });

  it('retries a tick whose publish failed', async () => {
    const store = new MemoryScheduleStore([{ name: 'e', everyMs: 1000, job }]);
    let failures = 1;
    const published: string[] = [];
    const scheduler = new Scheduler({
      store,
      claims: new MemoryIdempotencyStore(),
      publish: async (fire) => {
        if (failures-- > 0) throw new Error('broker down');
        published.push(fire.key);
      },
      logger: silentLogger(),
      now: () => new Date(5_500),
    });
    await scheduler.runOnce();
    await scheduler.runOnce();
    expect(published).toEqual([scheduleKey('e', new Date(5_000))]);
  });

  it('fires late, once each, the ticks a running replica missed while a pass stalled', async () => {
    const store = new MemoryScheduleStore([{ name: 'e', everyMs: 1000, job, catchUp: false }]);
    const claims = new MemoryIdempotencyStore();
    const clock = { now: new Date(10_500) };
    const stalled = replica(store, claims, clock);
    const other = replica(store, claims, clock);
    await stalled.scheduler.runOnce();
    clock.now = new Date(11_100);
    await stalled.scheduler.runOnce();
    // Its next pass comes 3.5 s later. A replica starting meanwhile leaves 13 s (its first sight,
    // catchUp false): the stalled one, running all along, fires it late.
    clock.now = new Date(13_200);
    await other.scheduler.runOnce();
    clock.now = new Date(14_600);
    await stalled.scheduler.runOnce();
    expect(stalled.fires.map((f) => f.fireTime.getTime())).toEqual([11_000, 12_000, 13_000, 14_000]);
    await other.scheduler.runOnce();
    expect(other.fires).toEqual([]);
  });

  it('fires every tick once, in order, after a broker outage refused their publishes', async () => {
    const store = new MemoryScheduleStore([{ name: 'e', everyMs: 1000, job }]);
    let brokerUp = true;
    const published: number[] = [];
    const clock = { now: new Date(20_100) };
    const scheduler = new Scheduler({
      store,
      claims: new MemoryIdempotencyStore(),
      publish: async (fire) => {
        if (!brokerUp) throw new Error('broker down');
        published.push(fire.fireTime.getTime());
      },
      logger: silentLogger(),
      now: () => clock.now,
    });
    await scheduler.runOnce();
    brokerUp = false;
    for (const t of [21_100, 22_100, 23_100]) {
      clock.now = new Date(t);
      await scheduler.runOnce();
    }
    brokerUp = true;
    clock.now = new Date(23_600);
    await scheduler.runOnce();
    await scheduler.runOnce();
    expect(published).toEqual([20_000, 21_000, 22_000, 23_000]);
  });

  it('treats ticks older than missedTickWindowMs as downtime', async () => {
    const store = new MemoryScheduleStore([{ name: 'e', everyMs: 1000, job, catchUp: false }]);
    const published: number[] = [];
    const clock = { now: new Date(30_100) };
    const scheduler = new Scheduler({
      store,
      claims: new MemoryIdempotencyStore(),
      publish: async (fire) => {
        published.push(fire.fireTime.getTime());
      },
      logger: silentLogger(),
      now: () => clock.now,
      missedTickWindowMs: 2_500,
    });
    await scheduler.runOnce();
    clock.now = new Date(40_100);
    await scheduler.runOnce();
    expect(published).toEqual([38_000, 39_000, 40_000]);
  });
});
