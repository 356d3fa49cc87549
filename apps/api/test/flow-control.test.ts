/**
 * Delay, priority, the limit key and cancellation over HTTP: what reaches Broker.publish, every 4xx, and that a
 * refused request leaves neither a message nor a record.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import type { JobPatch, JobStatus } from '@polyqueue/core';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { png, RecordingBroker } from './helpers';

const NOW = new Date('2030-01-31T09:00:00.000Z');
const email = { to: 'ada@example.com', subject: 'Hello', body: 'Hi Ada' };

let root: string;
let broker: RecordingBroker;
let state: MemoryStateStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'polyqueue-api-flow-'));
  broker = new RecordingBroker();
  state = new MemoryStateStore();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function app(apiToken?: string) {
  return createServer({
    broker,
    state,
    storageRoot: root,
    now: () => NOW,
    ...(apiToken ? { apiToken } : {}),
  });
}

function expectProblem(res: request.Response, status: number, kind: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: `urn:polyqueue:problem:${kind}`, status });
}

const job = (extra: Record<string, unknown>) => ({ type: 'send_email', payload: email, ...extra });

describe('delay and priority over HTTP', () => {
  it('POST /v1/jobs passes delayMs and priority to the broker and answers 202', async () => {
    const res = await request(app())
      .post('/v1/jobs')
      .send(job({ delayMs: 30_000, priority: 'high' }));
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'queued' });
    expect(broker.published).toEqual([
      expect.objectContaining({ queue: 'email', delayMs: 30_000, priority: 'high' }),
    ]);
    expect(broker.published[0]!.envelope.payload).toEqual(email);
  });

  it('turns runAt into a delay; a runAt within 5 s in the past runs now', async () => {
    const ahead = await request(app())
      .post('/v1/jobs')
      .send(job({ runAt: '2030-01-31T09:01:00Z' }));
    expect(ahead.status).toBe(202);
    const justPast = await request(app())
      .post('/v1/jobs')
      .send(job({ runAt: '2030-01-31T08:59:57+00:00', priority: 'low' }));
    expect(justPast.status).toBe(202);
    expect(broker.published.map((p) => [p.delayMs, p.priority])).toEqual([
      [60_000, undefined],
      [undefined, 'low'],
    ]);
  });

  it('POST /v1/emails takes them beside the email fields, out of the payload', async () => {
    const res = await request(app())
      .post('/v1/emails')
      .send({ ...email, delayMs: 1500, priority: 'low' });
    expect(res.status).toBe(202);
    expect(broker.published[0]).toMatchObject({
      delayMs: 1500,
      priority: 'low',
      envelope: { payload: email },
    });
  });

  it('POST /v1/images takes them as Polyqueue-* headers', async () => {
    const image = await png();
    const res = await request(app())
      .post('/v1/images')
      .set('Content-Type', 'image/png')
      .set('Polyqueue-Delay-Ms', '2500')
      .set('Polyqueue-Priority', 'high')
      .send(image);
    expect(res.status).toBe(202);
    expect(broker.published[0]).toMatchObject({ queue: 'image', delayMs: 2500, priority: 'high' });

    const bad = await request(app())
      .post('/v1/images')
      .set('Content-Type', 'image/png')
      .set('Polyqueue-Run-At', 'tomorrow')
      .send(image);
    expectProblem(bad, 400, 'invalid-flow-control');
    expect(bad.body.errors).toEqual([expect.objectContaining({ field: 'Polyqueue-Run-At' })]);
    expect(broker.published).toHaveLength(1);
  });

  it('carries a limit key onto the envelope (body field on JSON routes, Polyqueue-Key on images)', async () => {
    const viaJobs = await request(app())
      .post('/v1/jobs')
      .send(job({ key: 'tenant-42' }));
    expect(viaJobs.status).toBe(202);
    const viaEmails = await request(app())
      .post('/v1/emails')
      .send({ ...email, key: 'tenant-7', priority: 'low' });
    expect(viaEmails.status).toBe(202);
    const image = await png();
    const viaImages = await request(app())
      .post('/v1/images')
      .set('Content-Type', 'image/png')
      .set('Polyqueue-Key', 'tenant-9')
      .send(image);
    expect(viaImages.status).toBe(202);
    expect(broker.published.map((p) => p.envelope.key)).toEqual(['tenant-42', 'tenant-7', 'tenant-9']);
    // The key is the envelope's, taken out of the email's payload.
    expect(broker.published[1]!.envelope.payload).toEqual(email);
  });

  it.each([
    [{ delayMs: -1 }, 'delayMs', /0 or more/],
    [{ delayMs: 1.5 }, 'delayMs', /integer/],
    [{ delayMs: '100' }, 'delayMs', /integer/],
    [{ runAt: '2030-01-31T08:59:00Z' }, 'runAt', /60 s in the past/],
    [{ runAt: '2030-01-31' }, 'runAt', /ISO 8601/],
    [{ delayMs: 10, runAt: '2030-01-31T09:01:00Z' }, 'runAt', /not both/],
    [{ priority: 'urgent' }, 'priority', /high, normal, low/],
    [{ key: '' }, 'key', /1 to 200 characters/],
    [{ key: 42 }, 'key', /1 to 200 characters/],
    [{ key: 'k'.repeat(201) }, 'key', /1 to 200 characters/],
  ])('answers 400 naming the field for %j, and records nothing', async (extra, field, why) => {
    const res = await request(app()).post('/v1/jobs').send(job(extra));
    expectProblem(res, 400, 'invalid-flow-control');
    expect(res.body.errors).toEqual([expect.objectContaining({ field, pointer: `/${field}` })]);
    expect(res.body.errors[0].message).toMatch(why);
    expect(broker.published).toEqual([]);
    expect(state.jobs()).toEqual([]);
  });

  it('answers 422 naming the broker and the capability it lacks, and records nothing', async () => {
    broker.capabilities = { ...broker.capabilities, delayedDelivery: 'none', priority: 'none' };
    const delayed = await request(app())
      .post('/v1/jobs')
      .send(job({ delayMs: 1000 }));
    expectProblem(delayed, 422, 'capability-missing');
    expect(delayed.body).toMatchObject({ broker: 'recording', capability: 'delayedDelivery' });
    const urgent = await request(app())
      .post('/v1/emails')
      .send({ ...email, priority: 'high' });
    expectProblem(urgent, 422, 'capability-missing');
    expect(urgent.body).toMatchObject({ broker: 'recording', capability: 'priority' });
    expect(broker.published).toEqual([]);
    expect(state.jobs()).toEqual([]);

    // Asking for what every message is anyway is no capability: normal priority, no delay.
    const plain = await request(app())
      .post('/v1/jobs')
      .send(job({ priority: 'normal', delayMs: 0 }));
    expect(plain.status).toBe(202);
  });
});

describe('DELETE /v1/jobs/:id', () => {
  async function queued(): Promise<string> {
    const res = await request(app()).post('/v1/emails').send(email);
    return res.body.id;
  }

  it('cancels a queued job (200, status cancelled); a second cancel is a 409', async () => {
    const id = await queued();
    const res = await request(app()).delete(`/v1/jobs/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, status: 'cancelled' });
    expect((await state.getJob(id))?.status).toBe('cancelled');
    const again = await request(app()).delete(`/v1/jobs/${id}`);
    expectProblem(again, 409, 'job-finished');
    expect(again.body).toMatchObject({ jobId: id, jobStatus: 'cancelled' });
  });

  it('cancels a delayed or retrying job, and a running one with 202', async () => {
    const delayed = (
      await request(app())
        .post('/v1/jobs')
        .send(job({ delayMs: 60_000 }))
    ).body.id;
    expect((await request(app()).delete(`/v1/jobs/${delayed}`)).status).toBe(200);
    const retrying = await queued();
    await state.updateJob(retrying, { status: 'retrying' });
    expect((await request(app()).delete(`/v1/jobs/${retrying}`)).status).toBe(200);
    const running = await queued();
    await state.updateJob(running, { status: 'processing', attempts: 1 });
    const res = await request(app()).delete(`/v1/jobs/${running}`);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'cancelled', attempts: 1 });
  });

  it.each(['succeeded', 'dead'] as const)('answers 409 for a %s job and leaves it so', async (status) => {
    const id = await queued();
    await state.updateJob(id, { status });
    const res = await request(app()).delete(`/v1/jobs/${id}`);
    expectProblem(res, 409, 'job-finished');
    expect((await state.getJob(id))?.status).toBe(status);
  });

  it('answers 404 for an unknown id', async () => {
    expectProblem(await request(app()).delete('/v1/jobs/no-such-job'), 404, 'not-found');
  });

  it('requires the bearer token like the POSTs', async () => {
    const id = await queued();
    expectProblem(await request(app('s3cret')).delete(`/v1/jobs/${id}`), 401, 'unauthorized');
    const ok = await request(app('s3cret')).delete(`/v1/jobs/${id}`).set('Authorization', 'Bearer s3cret');
    expect(ok.status).toBe(200);
  });

  it('loses to a worker finishing the job between its read and its write: 409, still succeeded', async () => {
    const id = await queued();
    const cas = state.updateJob.bind(state);
    // The worker's `succeeded` lands just before the API's compare-and-set from `queued`.
    state.updateJob = async (jobId: string, patch: JobPatch, onlyIfStatus?: JobStatus) => {
      if (patch.status === 'cancelled') await cas(jobId, { status: 'succeeded', attempts: 1 });
      return cas(jobId, patch, onlyIfStatus);
    };
    const res = await request(app()).delete(`/v1/jobs/${id}`);
    expectProblem(res, 409, 'job-finished');
    expect((await state.getJob(id))?.status).toBe('succeeded');
  });
});
