/**
 * Bulk actions by filter (routes-bulk.ts, and the {match} redrive of routes-admin.ts) on the
 * sqlite broker and state store (temp files): jobs posted through the API die in a real worker
 * runtime, a dry run counts them without changing anything, the bulk retry redrives them (and
 * they succeed, the handler healed), a second retry skips them naming why; a bulk cancel cancels
 * what is unfinished; dead letters are redriven by a part of their reason. Nothing sleeps:
 * outcomes are awaited through `eventually` on the job records.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv, createStateStore } from '@polyqueue/brokers';
import type { CompleteBroker, JobStatus, StateStore } from '@polyqueue/core';
import { eventually } from '@polyqueue/testkit';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { startEmailWorker } from './helpers';

const TOKEN = 'bulk-s3cret';
const auth = { Authorization: `Bearer ${TOKEN}` };

describe('bulk actions by filter on sqlite', () => {
  let dir: string;
  let broker: CompleteBroker;
  let state: StateStore;
  let app: RequestListener;
  const stop = new AbortController();
  let running: Promise<void>;
  let failing = true;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'polyqueue-bulk-'));
    broker = await createBrokerFromEnv({
      BROKER: 'sqlite',
      SQLITE_PATH: join(dir, 'queue.db'),
      SQLITE_POLL_MAX_MS: '50',
    });
    state = await createStateStore(`sqlite:${join(dir, 'state.db')}`, {});
    app = createServer({ broker, state, apiToken: TOKEN, storageRoot: dir });
    ({ running } = await startEmailWorker({ broker, state, failing: () => failing, signal: stop.signal }));
  }, 30_000);

  afterAll(async () => {
    stop.abort();
    await running;
    await Promise.all([broker?.close(), state?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  async function postJobs(count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const res = await request(app)
        .post('/v1/jobs')
        .set(auth)
        .send({ type: 'send_email', payload: { to: `user${i}@example.com`, subject: 'Hi', body: 'x' } });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    return ids;
  }

  async function allReach(ids: string[], status: JobStatus): Promise<void> {
    await eventually(
      () => Promise.all(ids.map(async (id) => (await state.getJob(id))?.status)),
      (statuses) => statuses.every((s) => s === status),
      `${ids.length} jobs ${status}`,
    );
  }

  const bulk = (body: object) => request(app).post('/v1/jobs/bulk').set(auth).send(body);

  it('counts the dead jobs a filter matches, retries them all, then skips them naming why', async () => {
    const ids = await postJobs(3);
    await allReach(ids, 'dead');
    const filter = { status: 'dead', type: 'send_email', q: '550 no such' };

    const dry = await bulk({ action: 'retry', filter, dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toEqual({ action: 'retry', dryRun: true, matched: 3, capped: false });
    expect((await broker.stats('email')).dead).toBe(3); // a dry run changes nothing

    failing = false;
    const done = await bulk({ action: 'retry', filter });
    expect(done.body).toEqual({ action: 'retry', matched: 3, capped: false, done: 3, skipped: [] });
    await allReach(ids, 'succeeded');

    const again = await bulk({ action: 'retry', filter: { type: 'send_email' }, limit: 2 });
    expect(again.body).toMatchObject({ matched: 2, capped: true, done: 0 });
    expect(again.body.skipped).toEqual([
      { id: expect.any(String), reason: 'succeeded: only a dead job is retried' },
      { id: expect.any(String), reason: 'succeeded: only a dead job is retried' },
    ]);
  }, 30_000);

  it('cancels the unfinished jobs a filter matches and skips the finished ones', async () => {
    const type = `bulk-cancel-${randomUUID()}`;
    const at = new Date().toISOString();
    const record = (status: JobStatus) => ({
      id: randomUUID(),
      type,
      queue: 'email',
      status,
      attempts: 0,
      createdAt: at,
      updatedAt: at,
    });
    const [queued, retrying, finished] = [record('queued'), record('retrying'), record('succeeded')];
    for (const r of [queued, retrying, finished]) await state.createJob(r);
    const res = await bulk({ action: 'cancel', filter: { type } });
    expect(res.body).toEqual({
      action: 'cancel',
      matched: 3,
      capped: false,
      done: 2,
      skipped: [{ id: finished.id, reason: 'succeeded: already finished' }],
    });
    expect((await state.getJob(queued.id))?.status).toBe('cancelled');
    expect((await state.getJob(retrying.id))?.status).toBe('cancelled');
  });

  it('redrives the dead letters whose reason holds a text, after a dry run that counts them', async () => {
    failing = true;
    const ids = await postJobs(2);
    await allReach(ids, 'dead');
    const redrive = (body: object) => request(app).post('/v1/queues/email/dead/redrive').set(auth).send(body);
    expect((await redrive({ match: 'no such user', dryRun: true })).body).toEqual({
      queue: 'email',
      dryRun: true,
      count: 2,
      capped: false,
    });
    expect((await redrive({ match: 'NO SUCH USER', dryRun: true })).body.count).toBe(0); // case-sensitive
    failing = false;
    expect((await redrive({ match: 'no such user' })).body).toEqual({
      queue: 'email',
      redriven: 2,
      capped: false,
    });
    await allReach(ids, 'succeeded');
  }, 30_000);

  it('refuses a call without a token, an empty filter, an unknown action or a limit over 10,000', async () => {
    expect(
      (
        await request(app)
          .post('/v1/jobs/bulk')
          .send({ action: 'retry', filter: { status: 'dead' } })
      ).status,
    ).toBe(401);
    for (const body of [
      { action: 'retry', filter: {} },
      { action: 'delete', filter: { status: 'dead' } },
      { action: 'retry', filter: { status: 'dead' }, limit: 10_001 },
    ]) {
      const res = await bulk(body);
      expect(res.status).toBe(422);
      expect(res.body.type).toBe('urn:polyqueue:problem:validation-error');
    }
  });
});
