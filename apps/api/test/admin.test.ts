/**
 * The admin API (routes-admin.ts) on real brokers: sqlite (temp files) and redis-streams on the
 * local Redis. Jobs posted through the API fail for good in a real worker runtime (a handler
 * that throws NonRetryableError), so the dead letters are the ones production would hold; then
 * they are listed, redriven (and succeed, the handler healed), retried and purged over HTTP.
 * Nothing sleeps: outcomes are awaited through `eventually` on the job records.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import { createBrokerFromEnv, createQueueControls, createStateStore } from '@polyqueue/brokers';
import {
  type CompleteBroker,
  MemoryQueueControls,
  type QueueControls,
  type StateStore,
} from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import { eventually } from '@polyqueue/testkit';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { RecordingBroker, startEmailWorker } from './helpers';

const TOKEN = 'admin-s3cret';
const auth = { Authorization: `Bearer ${TOKEN}` };

interface Backend {
  name: string;
  env: (dir: string) => Record<string, string>;
  /** Removes what the run left in a shared server. */
  cleanup?: (env: Record<string, string>) => Promise<void>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    env: (dir) => ({ BROKER: 'sqlite', SQLITE_PATH: join(dir, 'queue.db'), SQLITE_POLL_MAX_MS: '50' }),
  },
  {
    name: 'redis-streams',
    env: () => ({
      BROKER: 'redis-streams',
      REDIS_URL: 'redis://127.0.0.1:6379',
      // A prefix of its own: the shared Redis holds other tests' queues.
      POLYQUEUE_PREFIX: `pq-admin-${randomUUID().slice(0, 8)}`,
    }),
    async cleanup(env) {
      const redis = new Redis(env.REDIS_URL!);
      const prefix = env.POLYQUEUE_PREFIX!;
      const keys = [...(await redis.keys(`${prefix}:*`)), ...(await redis.keys(`{${prefix}:*`))];
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  },
];

describe.each(backends)('admin API on $name', ({ env: envFor, cleanup }) => {
  let dir: string;
  let env: Record<string, string>;
  let broker: CompleteBroker;
  let state: StateStore;
  let controls: QueueControls;
  let app: RequestListener;
  let stop: AbortController;
  let running: Promise<void>;
  /** While true the handler fails for good; the test heals it before redriving. */
  let failing = true;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'polyqueue-admin-'));
    const stateUrl = `sqlite:${join(dir, 'state.db')}`;
    env = envFor(dir);
    broker = await createBrokerFromEnv(env);
    state = await createStateStore(stateUrl, {});
    controls = await createQueueControls(stateUrl, {});
    app = createServer({ broker, state, controls, apiToken: TOKEN, storageRoot: dir });
    stop = new AbortController();
    ({ running } = await startEmailWorker({ broker, state, failing: () => failing, signal: stop.signal }));
  }, 30_000);

  afterAll(async () => {
    stop?.abort();
    await running;
    await broker?.deadLetters('email').purge();
    await Promise.all([broker?.close(), state?.close(), controls?.close()]);
    await cleanup?.(env);
    await rm(dir, { recursive: true, force: true });
  });

  async function postEmail(subject: string): Promise<string> {
    const res = await request(app)
      .post('/v1/emails')
      .set(auth)
      .send({ to: 'ops@example.com', subject, body: 'hello' });
    expect(res.status).toBe(202);
    return res.body.id as string;
  }

  const statusOf = async (id: string) => (await state.getJob(id))?.status;
  const untilStatus = (id: string, status: string) =>
    eventually(
      () => statusOf(id),
      (s) => s === status,
      `job ${id} ${status}`,
    );
  const deadCount = async () => (await broker.stats('email')).dead;

  it('lists, redrives, retries and purges dead letters, refusing what it must', async () => {
    const ids = [await postEmail('first'), await postEmail('second'), await postEmail('third')];
    for (const id of ids) await untilStatus(id, 'dead');
    await eventually(deadCount, (n) => n === 3, 'three dead letters');

    const queues = await request(app).get('/v1/queues').set(auth);
    expect(queues.status).toBe(200);
    expect(queues.body.map((q: { name: string }) => q.name)).toEqual(jobQueues);
    expect(queues.body[0]).toEqual({
      name: 'email',
      ready: 0,
      inFlight: 0,
      delayed: 0,
      dead: 3,
      paused: false,
      limits: null,
    });

    // Two pages, oldest first.
    const first = await request(app).get('/v1/queues/email/dead?limit=2').set(auth);
    expect(first.status).toBe(200);
    expect(first.body.items.map((d: { id: string }) => d.id)).toEqual(ids.slice(0, 2));
    expect(first.body.items[0]).toMatchObject({
      id: ids[0],
      type: 'send_email',
      attempt: 1,
      payload: { to: 'ops@example.com', subject: 'first', body: 'hello' },
    });
    expect(first.body.items[0].reason).toContain('mailbox unavailable');
    expect(Number.isNaN(Date.parse(first.body.items[0].deadAt))).toBe(false);
    const second = await request(app)
      .get(`/v1/queues/email/dead?limit=2&cursor=${first.body.nextCursor}`)
      .set(auth);
    expect(second.body.items.map((d: { id: string }) => d.id)).toEqual([ids[2]]);
    expect(second.body.nextCursor).toBeNull();

    // Ids that are not dead: 409 naming them, nothing redriven.
    const conflict = await request(app)
      .post('/v1/queues/email/dead/redrive')
      .set(auth)
      .send({ ids: [ids[0], 'not-a-dead-letter'] });
    expect(conflict.status).toBe(409);
    expect(conflict.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(conflict.body).toMatchObject({
      type: 'urn:polyqueue:problem:not-dead',
      ids: ['not-a-dead-letter'],
    });
    expect(await deadCount()).toBe(3);

    // A wrong token changes nothing, reads included (dead letters hold payloads).
    const wrong = { Authorization: 'Bearer nope' };
    expect(
      (await request(app).post('/v1/queues/email/dead/redrive').set(wrong).send({ all: true })).status,
    ).toBe(401);
    expect((await request(app).delete('/v1/queues/email/dead?confirm=email').set(wrong)).status).toBe(401);
    expect((await request(app).post(`/v1/jobs/${ids[0]}/retry`).set(wrong)).status).toBe(401);
    expect((await request(app).get('/v1/queues/email/dead')).status).toBe(401);
    expect((await request(app).get('/v1/queues')).status).toBe(401);
    expect(await deadCount()).toBe(3);

    const dry = await request(app)
      .post('/v1/queues/email/dead/redrive')
      .set(auth)
      .send({ ids: [ids[0], ids[1]], dryRun: true });
    expect(dry.body).toEqual({ queue: 'email', dryRun: true, count: 2 });
    expect(await deadCount()).toBe(3);

    // Healed, the selected one runs again and succeeds; the others stay dead.
    failing = false;
    const redrive = await request(app)
      .post('/v1/queues/email/dead/redrive')
      .set(auth)
      .send({ ids: [ids[0]] });
    expect(redrive.body).toEqual({ queue: 'email', redriven: 1 });
    await untilStatus(ids[0]!, 'succeeded');
    expect(await statusOf(ids[1]!)).toBe('dead');

    // One job by id: back to queued, then run.
    const retry = await request(app).post(`/v1/jobs/${ids[1]}/retry`).set(auth);
    expect(retry.status).toBe(202);
    expect(retry.headers.location).toBe(`/v1/jobs/${ids[1]}`);
    await untilStatus(ids[1]!, 'succeeded');
    const notDead = await request(app).post(`/v1/jobs/${ids[1]}/retry`).set(auth);
    expect(notDead.status).toBe(409);
    expect(notDead.body.detail).toBe(`job ${ids[1]} is succeeded; only a dead job can be retried`);
    expect((await request(app).post('/v1/jobs/no-such-job/retry').set(auth)).status).toBe(404);

    const dryAll = await request(app)
      .post('/v1/queues/email/dead/redrive')
      .set(auth)
      .send({ all: true, dryRun: true });
    expect(dryAll.body).toEqual({ queue: 'email', dryRun: true, count: 1 });

    // Purge needs the queue's name as confirmation.
    const unconfirmed = await request(app).delete('/v1/queues/email/dead').set(auth);
    expect(unconfirmed.status).toBe(400);
    expect(unconfirmed.body.detail).toBe(
      'purging deletes every dead letter of email for good; repeat with ?confirm=email',
    );
    expect((await request(app).delete('/v1/queues/email/dead?confirm=image').set(auth)).status).toBe(400);
    expect(await deadCount()).toBe(1);
    const purge = await request(app).delete('/v1/queues/email/dead?confirm=email').set(auth);
    expect(purge.body).toEqual({ queue: 'email', purged: 1 });
    expect((await request(app).get('/v1/queues/email/dead').set(auth)).body.items).toEqual([]);
    expect(await statusOf(ids[2]!)).toBe('dead');
    // Its letter is gone, so a retry has nothing to redrive.
    const gone = await request(app).post(`/v1/jobs/${ids[2]}/retry`).set(auth);
    expect(gone.status).toBe(409);
    expect(gone.body.type).toBe('urn:polyqueue:problem:not-in-dead-letters');
  }, 60_000);

  it('answers 404 problem+json naming the known queues for an unknown one', async () => {
    const res = await request(app).get('/v1/queues/emial/dead').set(auth);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.detail).toBe(`no queue "emial"; the queues are ${jobQueues.join(', ')}`);
    expect(res.body.queues).toEqual(jobQueues);
    const redrive = await request(app).post('/v1/queues/emial/dead/redrive').set(auth).send({ all: true });
    expect(redrive.status).toBe(404);
  });

  it('refuses a malformed redrive body and query with 422', async () => {
    const body = await request(app).post('/v1/queues/email/dead/redrive').set(auth).send({ ids: [] });
    expect(body.status).toBe(422);
    const query = await request(app).get('/v1/queues/email/dead?limit=0').set(auth);
    expect(query.status).toBe(422);
  });
});

describe('admin API on a broker without BrokerAdmin', () => {
  it('answers 501 problem+json naming the broker', async () => {
    const app = createServer({
      broker: new RecordingBroker(),
      state: new MemoryStateStore(),
      storageRoot: '/nonexistent',
    });
    const res = await request(app).get('/v1/queues/email/dead');
    expect(res.status).toBe(501);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: 'urn:polyqueue:problem:not-implemented', broker: 'recording' });
  });

  it('answers null, not 0, for counts and flags it could not read, saying why', async () => {
    const broker = new RecordingBroker();
    broker.stats = async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
    };
    const controls = new MemoryQueueControls();
    controls.failWith = new Error('state store down');
    const app = createServer({
      broker,
      state: new MemoryStateStore(),
      controls,
      storageRoot: '/nonexistent',
    });
    const res = await request(app).get('/v1/queues');
    expect(res.status).toBe(200);
    expect(res.body[0]).toEqual({
      name: 'email',
      ready: null,
      inFlight: null,
      delayed: null,
      dead: null,
      paused: null,
      limits: null,
      error: 'connect ECONNREFUSED 127.0.0.1:6379',
    });
  });

  it('lists the queues with paused null when there are no pause flags', async () => {
    const app = createServer({
      broker: new RecordingBroker(),
      state: new MemoryStateStore(),
      storageRoot: '/nonexistent',
    });
    const res = await request(app).get('/v1/queues');
    expect(res.body[0]).toEqual({
      name: 'email',
      ready: 0,
      inFlight: 0,
      delayed: 0,
      dead: 0,
      paused: null,
      limits: null,
    });
  });
});
