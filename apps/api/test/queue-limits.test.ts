import { MemoryStateStore } from '@polyqueue/app-runtime';
import { MemoryQueueLimits } from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { RecordingBroker } from './helpers';

function app(queueLimits: MemoryQueueLimits, apiToken?: string) {
  return createServer({
    broker: new RecordingBroker(),
    state: new MemoryStateStore(),
    queueLimits,
    storageRoot: '/nonexistent',
    ...(apiToken ? { apiToken } : {}),
  });
}

const NONE = { ratePerSec: null, concurrency: null, perKeyConcurrency: null };

describe('GET and PUT /v1/queues/:queue/limits', () => {
  it('stores the limits the workers read, shows them, and clears them with nulls', async () => {
    const limits = new MemoryQueueLimits();
    const server = app(limits);
    expect((await request(server).get('/v1/queues/email/limits')).body).toEqual({
      queue: 'email',
      limits: NONE,
    });

    const put = await request(server)
      .put('/v1/queues/email/limits')
      .send({ ratePerSec: 2.5, concurrency: 5, perKeyConcurrency: 1 });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({
      queue: 'email',
      limits: { ratePerSec: 2.5, concurrency: 5, perKeyConcurrency: 1 },
    });
    expect((await limits.limits()).get('email')).toEqual({
      ratePerSec: 2.5,
      concurrency: 5,
      perKeyConcurrency: 1,
    });

    const metrics = await request(server).get('/metrics');
    expect(metrics.text).toMatch(/^polyqueue_queue_rate_limit\{queue="email"\} 2\.5$/m);
    expect(metrics.text).toMatch(/^polyqueue_queue_concurrency_limit\{queue="email"\} 5$/m);

    // A PUT replaces: what is null or absent has no limit.
    const replaced = await request(server)
      .put('/v1/queues/email/limits')
      .send({ concurrency: 2, ratePerSec: null });
    expect(replaced.body.limits).toEqual({ ...NONE, concurrency: 2 });
    expect((await request(server).get('/v1/queues/email/limits')).body.limits).toEqual({
      ...NONE,
      concurrency: 2,
    });

    await request(server).put('/v1/queues/email/limits').send({}).expect(200);
    expect((await limits.limits()).has('email')).toBe(false);
    expect((await request(server).get('/metrics')).text).not.toMatch(
      /polyqueue_queue_concurrency_limit\{queue="email"\}/,
    );
  });

  it('shows every queue’s limits in GET /v1/queues', async () => {
    const limits = new MemoryQueueLimits();
    await limits.setLimits('email', { ratePerSec: 10 });
    const rows = (await request(app(limits)).get('/v1/queues')).body as { name: string; limits: unknown }[];
    expect(rows.map((r) => r.name)).toEqual([...jobQueues]);
    for (const row of rows)
      expect(row.limits).toEqual(row.name === 'email' ? { ...NONE, ratePerSec: 10 } : NONE);
  });

  it('answers 400 problem+json for a negative, zero, fractional-count, non-numeric or unknown limit', async () => {
    const limits = new MemoryQueueLimits();
    const server = app(limits);
    const bodies: [unknown, RegExp][] = [
      [{ ratePerSec: -1 }, /ratePerSec must be a number above 0/],
      [{ ratePerSec: 0 }, /ratePerSec/],
      [{ ratePerSec: 'fast' }, /ratePerSec/],
      [{ concurrency: -3 }, /concurrency must be a whole number/],
      [{ concurrency: 1.5 }, /concurrency/],
      [{ perKeyConcurrency: '2' }, /perKeyConcurrency/],
      [{ rate: 5 }, /unknown field rate/],
      [[5], /JSON object/],
    ];
    for (const [body, detail] of bodies) {
      const res = await request(server)
        .put('/v1/queues/email/limits')
        .send(body as object);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ type: 'urn:polyqueue:problem:invalid-limits', status: 400 });
      expect(res.body.detail).toMatch(detail);
    }
    expect((await limits.limits()).size, 'nothing stored').toBe(0);
  });

  it('answers 404 naming the known queues for an unknown one, and needs the token', async () => {
    const limits = new MemoryQueueLimits();
    const missing = await request(app(limits)).put('/v1/queues/emial/limits').send({ concurrency: 1 });
    expect(missing.status).toBe(404);
    expect(missing.body.detail).toBe(`no queue "emial"; the queues are ${jobQueues.join(', ')}`);
    expect((await request(app(limits)).get('/v1/queues/emial/limits')).status).toBe(404);

    const guarded = app(limits, 's3cret');
    expect((await request(guarded).put('/v1/queues/email/limits').send({ concurrency: 1 })).status).toBe(401);
    expect((await request(guarded).get('/v1/queues/email/limits')).status).toBe(401);
    expect((await limits.limits()).size).toBe(0);
  });

  it('answers 503 problem+json when the state store cannot be reached', async () => {
    const limits = new MemoryQueueLimits();
    limits.failWith = new Error('connect ECONNREFUSED');
    const res = await request(app(limits)).put('/v1/queues/email/limits').send({ concurrency: 1 });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body.detail).toMatch(/state store did not answer \(connect ECONNREFUSED\)/);
  });
});
