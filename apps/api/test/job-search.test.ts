/**
 * GET /v1/jobs (routes-job-search.ts) over a real sqlite state store: jobs posted through the
 * API are found by their Idempotency-Key, by status and a page at a time; and on the real Redis,
 * whose store searches its sorted sets by time (broker-redis/src/job-index.ts).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStateStore } from '@polyqueue/brokers';
import type { StateStore } from '@polyqueue/core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { RecordingBroker } from './helpers';

const TOKEN = 'search-s3cret';
const auth = { Authorization: `Bearer ${TOKEN}` };
const email = { to: 'ada@example.com', subject: 'Hello', body: 'Hi Ada' };

describe('GET /v1/jobs on a sqlite state store', () => {
  let dir: string;
  let state: StateStore;
  let app: ReturnType<typeof createServer>;
  const keys = [0, 1, 2].map((i) => `order-${i}-${randomUUID()}`);
  const ids: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'polyqueue-search-'));
    state = await createStateStore(`sqlite:${join(dir, 'state.db')}`, {});
    app = createServer({ broker: new RecordingBroker(), state, apiToken: TOKEN, storageRoot: dir });
    for (const key of keys) {
      const res = await request(app)
        .post('/v1/jobs')
        .set(auth)
        .set('Idempotency-Key', key)
        .send({ type: 'send_email', payload: email });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
  });
  afterAll(async () => {
    await state?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds a job by its idempotency key', async () => {
    const res = await request(app).get('/v1/jobs').query({ q: keys[1] }).set(auth);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toEqual({
      jobs: [expect.objectContaining({ id: ids[1], idempotencyKey: keys[1], status: 'queued' })],
    });
  });

  it('leaves the payload to the job itself: GET /v1/jobs/:id has it, the search does not', async () => {
    const job = await request(app).get(`/v1/jobs/${ids[0]}`).set(auth);
    expect(job.body.payload).toEqual(email);
    const res = await request(app).get('/v1/jobs').query({ q: keys[0] }).set(auth);
    expect(res.body.jobs).toHaveLength(1);
    expect(res.body.jobs[0]).not.toHaveProperty('payload');
  });

  it('pages through the matches newest first, ignoring empty fields of a form', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const query = {
        status: 'queued',
        type: 'send_email',
        queue: '',
        q: '',
        limit: 2,
        ...(cursor ? { cursor } : {}),
      };
      const res = await request(app).get('/v1/jobs').query(query).set(auth);
      expect(res.status).toBe(200);
      expect(res.body.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.jobs.map((j: { id: string }) => j.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    // Newest first; jobs posted within one millisecond come in descending id order.
    const records = await Promise.all(ids.map(async (id) => (await state.getJob(id))!));
    records.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || (b.id < a.id ? -1 : 1));
    expect(seen).toEqual(records.map((r) => r.id));
  });

  it('needs the bearer token and answers 422 for a bad status, limit or cursor', async () => {
    expect((await request(app).get('/v1/jobs')).status).toBe(401);
    for (const query of [{ status: 'done' }, { limit: '0' }, { cursor: 'not-a-cursor' }]) {
      const res = await request(app).get('/v1/jobs').query(query).set(auth);
      expect(res.status).toBe(422);
      expect(res.body.type).toBe('urn:polyqueue:problem:validation-error');
    }
  });
});

describe('GET /v1/jobs on a Redis state store', () => {
  it('finds a job posted through the API by its idempotency key, over the index by time', async () => {
    const state = await createStateStore('redis://127.0.0.1:6379', {}).catch((error: Error) => {
      throw new Error(
        `cannot reach Redis at 127.0.0.1:6379 (redis-server --daemonize yes): ${error.message}`,
      );
    });
    try {
      const app = createServer({ broker: new RecordingBroker(), state, storageRoot: '/nonexistent' });
      const key = `redis-search-${randomUUID()}`;
      const posted = await request(app)
        .post('/v1/jobs')
        .set('Idempotency-Key', key)
        .send({ type: 'send_email', payload: email });
      expect(posted.status).toBe(202);
      const res = await request(app).get('/v1/jobs').query({ q: key, status: 'queued', type: 'send_email' });
      expect(res.status).toBe(200);
      expect(res.body.jobs).toEqual([expect.objectContaining({ id: posted.body.id, idempotencyKey: key })]);
    } finally {
      await state.close();
    }
  });
});
