import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import { MemoryScheduleStore, type Schedule, scheduleKey, silentLogger } from '@polyqueue/core';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSchedulesFile, publishFire } from '../src/scheduling';
import { createServer } from '../src/server';
import { RecordingBroker } from './helpers';

const email = { type: 'send_email', payload: { to: 'ops@example.com', subject: 'report', body: 'daily' } };
const NOW = new Date('2026-05-01T12:00:00Z');

function app(schedules: MemoryScheduleStore, apiToken?: string) {
  return createServer({
    broker: new RecordingBroker(),
    state: new MemoryStateStore(),
    schedules,
    storageRoot: '/nonexistent',
    now: () => NOW,
    ...(apiToken ? { apiToken } : {}),
  });
}

describe('/v1/schedules', () => {
  it('creates, lists with next fire times, replaces and deletes', async () => {
    const store = new MemoryScheduleStore();
    const server = app(store);
    const created = await request(server)
      .post('/v1/schedules')
      .send({ name: 'daily-report', cron: '0 9 * * *', timezone: 'Asia/Tokyo', job: email });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe('/v1/schedules/daily-report');
    // 09:00 in Tokyo is 00:00 UTC: the next after 12:00 UTC is tomorrow's.
    expect(created.body).toMatchObject({
      name: 'daily-report',
      catchUp: true,
      nextFireAt: '2026-05-02T00:00:00.000Z',
    });
    await request(server)
      .post('/v1/schedules')
      .send({ name: 'tick', everyMs: 60_000, catchUp: false, job: email });

    const list = await request(server).get('/v1/schedules');
    expect(list.status).toBe(200);
    expect(list.body.schedules.map((s: Schedule & { nextFireAt: string }) => [s.name, s.nextFireAt])).toEqual(
      [
        ['daily-report', '2026-05-02T00:00:00.000Z'],
        ['tick', '2026-05-01T12:01:00.000Z'],
      ],
    );

    const replaced = await request(server)
      .post('/v1/schedules')
      .send({ name: 'tick', everyMs: 5000, job: email });
    expect(replaced.status).toBe(200);
    expect((await store.list()).find((s) => s.name === 'tick')?.everyMs).toBe(5000);

    expect((await request(server).delete('/v1/schedules/tick')).status).toBe(204);
    const gone = await request(server).delete('/v1/schedules/tick');
    expect(gone.status).toBe(404);
    expect(gone.headers['content-type']).toMatch(/application\/problem\+json/);
    expect((await store.list()).map((s) => s.name)).toEqual(['daily-report']);
  });

  it.each([
    ['cron', { name: 'a', cron: '61 * * * *', job: email }],
    ['timezone', { name: 'a', cron: '0 9 * * *', timezone: 'Mars/Olympus', job: email }],
    ['everyMs', { name: 'a', everyMs: 10, job: email }],
    ['cron', { name: 'a', cron: '* * * * *', everyMs: 1000, job: email }],
    ['cron', { name: 'a', job: email }],
    ['job.type', { name: 'a', everyMs: 1000, job: { type: 'mine_bitcoin', payload: {} } }],
    ['job.payload.to', { name: 'a', everyMs: 1000, job: { type: 'send_email', payload: { body: 'x' } } }],
    ['name', { name: 'a b', everyMs: 1000, job: email }],
  ])('answers 400 naming %s', async (field, body) => {
    const store = new MemoryScheduleStore();
    const res = await request(app(store)).post('/v1/schedules').send(body);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    expect(await store.list()).toEqual([]);
  });

  it('needs the bearer token to create or delete', async () => {
    const server = app(new MemoryScheduleStore(), 'a-token-of-sixteen-chars');
    expect(
      (await request(server).post('/v1/schedules').send({ name: 'a', everyMs: 1000, job: email })).status,
    ).toBe(401);
    expect((await request(server).delete('/v1/schedules/a')).status).toBe(401);
  });
});

describe('publishing a fire', () => {
  it('goes through the enqueue path once per tick, even when published twice', async () => {
    const broker = new RecordingBroker();
    const jobs = new MemoryStateStore();
    let id = 0;
    const publish = publishFire({
      broker,
      jobs,
      newId: () => `job-${++id}`,
      now: () => NOW,
      logger: silentLogger(),
    });
    const schedule: Schedule = { name: 'tick', everyMs: 1000, job: email };
    const fire = { schedule, fireTime: NOW, key: scheduleKey('tick', NOW) };
    await publish(fire);
    await publish(fire);
    expect(broker.published).toHaveLength(1);
    expect(broker.published[0]?.envelope).toMatchObject({ type: 'send_email', payload: email.payload });
    expect((await jobs.getJob('job-1'))?.idempotencyKey).toBe('schedule:tick:2026-05-01T12:00:00.000Z');
  });
});

describe('SCHEDULES_FILE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pq-schedules-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('puts each schedule into the store, keeping the createdAt of one already stored', async () => {
    const file = join(dir, 'schedules.json');
    writeFileSync(
      file,
      JSON.stringify([
        { name: 'daily-report', cron: '0 9 * * *', timezone: 'Asia/Tokyo', job: email },
        { name: 'tick', everyMs: 60_000, catchUp: false, job: email },
      ]),
    );
    const store = new MemoryScheduleStore([
      { name: 'tick', everyMs: 1000, job: email, createdAt: '2026-01-01T00:00:00Z' },
    ]);
    expect(await loadSchedulesFile(file, store, NOW)).toBe(2);
    expect(await store.list()).toEqual([
      {
        name: 'daily-report',
        cron: '0 9 * * *',
        timezone: 'Asia/Tokyo',
        job: email,
        createdAt: NOW.toISOString(),
      },
      { name: 'tick', everyMs: 60_000, catchUp: false, job: email, createdAt: '2026-01-01T00:00:00Z' },
    ]);
  });

  it('refuses a bad entry, naming it and the field', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify([
        { name: 'ok', everyMs: 1000, job: email },
        { name: 'x', cron: 'nope', job: email },
      ]),
    );
    await expect(loadSchedulesFile(file, new MemoryScheduleStore(), NOW)).rejects.toThrow(
      /SCHEDULES_FILE: entry 1: .*cron/,
    );
  });
});
