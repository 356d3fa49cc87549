import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import { silentLogger } from '@polyqueue/core';
import sharp from 'sharp';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createServer } from '../src/server';
import { png, RecordingBroker } from './helpers';

let root: string;
let broker: RecordingBroker;
let state: MemoryStateStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'polyqueue-api-'));
  broker = new RecordingBroker();
  state = new MemoryStateStore();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function app(options: { apiToken?: string; imageBytes?: number } = {}) {
  return createServer({
    broker,
    state,
    storageRoot: root,
    apiToken: options.apiToken,
    limits: { jsonBytes: 100 * 1024, imageBytes: options.imageBytes ?? 20 * 1024 * 1024 },
  });
}

const email = { to: 'ada@example.com', subject: 'Hello', body: 'Hi Ada' };

function expectProblem(res: request.Response, status: number, kind: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: `urn:polyqueue:problem:${kind}`, status });
  expect(typeof res.body.detail).toBe('string');
}

describe('POST /v1/emails', () => {
  it('answers 202 with the job id and a Location, records the job and publishes one envelope', async () => {
    const res = await request(app()).post('/v1/emails').send(email);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ type: 'send_email', queue: 'email', status: 'queued' });
    expect(res.headers.location).toBe(`/v1/jobs/${res.body.id}`);
    expect(broker.published).toHaveLength(1);
    expect(broker.published[0]).toMatchObject({
      queue: 'email',
      envelope: { id: res.body.id, type: 'send_email', payload: email },
    });

    const status = await request(app()).get(res.headers.location!);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ id: res.body.id, status: 'queued', attempts: 0, type: 'send_email' });
  });

  it('names the missing fields', async () => {
    const res = await request(app()).post('/v1/emails').send({ body: 'no recipient' });
    expectProblem(res, 422, 'validation-error');
    const fields = res.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['to', 'subject']));
    expect(res.body.detail).toMatch(/to:/);
    expect(broker.published).toHaveLength(0);
  });

  it('names a field of the wrong type', async () => {
    const res = await request(app())
      .post('/v1/emails')
      .send({ ...email, to: 42 });
    expectProblem(res, 422, 'validation-error');
    expect(res.body.errors[0]).toMatchObject({ field: 'to', pointer: '/to' });
  });

  it('answers 400 to invalid JSON and 415 to another content type', async () => {
    const bad = await request(app())
      .post('/v1/emails')
      .set('content-type', 'application/json')
      .send('{"to": ');
    expectProblem(bad, 400, 'malformed-json');
    const text = await request(app()).post('/v1/emails').set('content-type', 'text/plain').send('hello');
    expectProblem(text, 415, 'unsupported-media-type');
    const array = await request(app()).post('/v1/emails').send([1, 2]);
    expectProblem(array, 422, 'validation-error');
  });

  it('answers 413 to a JSON body over 100 KiB', async () => {
    const res = await request(app())
      .post('/v1/emails')
      .send({ ...email, body: 'x'.repeat(101 * 1024) });
    expectProblem(res, 413, 'payload-too-large');
    expect(broker.published).toHaveLength(0);
  });
});

describe('Idempotency-Key', () => {
  it('returns the same job for the same key and body and publishes once', async () => {
    const first = await request(app()).post('/v1/emails').set('Idempotency-Key', 'k-1').send(email);
    // Same content, another key order: the same request.
    const again = await request(app())
      .post('/v1/emails')
      .set('Idempotency-Key', 'k-1')
      .send({ body: email.body, subject: email.subject, to: email.to });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(broker.published).toHaveLength(1);
  });

  it('answers 409 to the same key with another body', async () => {
    await request(app()).post('/v1/emails').set('Idempotency-Key', 'k-2').send(email);
    const other = await request(app())
      .post('/v1/emails')
      .set('Idempotency-Key', 'k-2')
      .send({ ...email, subject: 'Other' });
    expectProblem(other, 409, 'idempotency-key-reused');
    expect(broker.published).toHaveLength(1);
  });

  it('publishes the same job again when the broker refused it the first time', async () => {
    broker.failWith = new Error('connection refused');
    const refused = await request(app()).post('/v1/emails').set('Idempotency-Key', 'k-3').send(email);
    expectProblem(refused, 503, 'service-unavailable');
    broker.failWith = undefined;
    const retried = await request(app()).post('/v1/emails').set('Idempotency-Key', 'k-3').send(email);
    expect(retried.status).toBe(202);
    expect(broker.published).toHaveLength(1);
    expect(broker.published[0]!.envelope.id).toBe(retried.body.id);
    expect(state.jobs()).toHaveLength(1);
    expect(state.jobs()[0]).toMatchObject({ status: 'queued' });
  });

  it('publishes a job whose first request died before the broker confirmed it, instead of answering replayed', async () => {
    // The first request's publish never completes: the API was SIGKILLed while it waited.
    const publish = broker.publish.bind(broker);
    let stalled: (() => void) | undefined;
    broker.publish = () => {
      broker.publish = publish;
      return new Promise<void>((resolve) => {
        stalled = resolve;
      });
    };
    const lost = request(app()).post('/v1/emails').set('Idempotency-Key', 'k-4').send(email).then();
    await vi.waitFor(() => expect(stalled).toBeDefined());
    expect(state.jobs()).toMatchObject([{ status: 'pending' }]);
    expect(broker.published).toHaveLength(0);

    const retried = await request(app()).post('/v1/emails').set('Idempotency-Key', 'k-4').send(email);
    expect(retried.status).toBe(202);
    expect(retried.headers['idempotent-replayed']).toBe('true');
    expect(broker.published.map((p) => p.envelope.id)).toEqual([retried.body.id]);
    expect(state.jobs()).toMatchObject([{ id: retried.body.id, status: 'queued' }]);
    // Once the record says queued, a replay publishes nothing more.
    await request(app()).post('/v1/emails').set('Idempotency-Key', 'k-4').send(email);
    expect(broker.published).toHaveLength(1);
    stalled!();
    await lost;
  });

  it('does not move a job back to queued when a fast worker has already finished it', async () => {
    const publish = broker.publish.bind(broker);
    broker.publish = async (queue, messages) => {
      await publish(queue, messages);
      // The worker took the job and succeeded before the API wrote queued.
      await state.updateJob(messages[0]!.envelope.id, { status: 'succeeded', attempts: 1 });
    };
    const res = await request(app()).post('/v1/emails').send(email);
    expect(res.status).toBe(202);
    // The answer does not wait for the queued mark (enqueue.ts): it says the job was queued, and
    // the mark, made only over `pending`, leaves the worker's record as it is.
    expect(res.body.status).toBe('queued');
    expect(await state.getJob(res.body.id)).toMatchObject({ status: 'succeeded' });
  });
});

describe('POST /v1/jobs', () => {
  it('accepts a known type and answers 202', async () => {
    const res = await request(app()).post('/v1/jobs').send({ type: 'send_email', payload: email });
    expect(res.status).toBe(202);
    expect(broker.published[0]!.queue).toBe('email');
  });

  it('refuses an unknown job type, naming the valid ones', async () => {
    const res = await request(app()).post('/v1/jobs').send({ type: 'mine_bitcoin', payload: {} });
    expectProblem(res, 422, 'validation-error');
    expect(res.body.errors[0]).toMatchObject({ field: 'type' });
    expect(res.body.detail).toMatch(/send_email, process_image/);
  });

  it('names payload fields under payload.', async () => {
    const res = await request(app())
      .post('/v1/jobs')
      .send({ type: 'send_email', payload: { ...email, to: 'not-an-address' } });
    expectProblem(res, 422, 'validation-error');
    expect(res.body.errors[0]).toMatchObject({ field: 'payload.to', pointer: '/payload/to' });
  });

  it('refuses an image path that leaves the storage root, or names no file', async () => {
    const escaping = await request(app())
      .post('/v1/jobs')
      .send({ type: 'process_image', payload: { path: '../../etc/passwd' } });
    expectProblem(escaping, 422, 'validation-error');
    expect(escaping.body.errors[0].field).toBe('payload.path');
    const missing = await request(app())
      .post('/v1/jobs')
      .send({ type: 'process_image', payload: { path: 'nowhere.png' } });
    expectProblem(missing, 422, 'validation-error');
    expect(missing.body.detail).toMatch(/no such file/);
    expect(broker.published).toHaveLength(0);
  });
});

describe('POST /v1/images', () => {
  it('stores a raw image body under the storage root and enqueues process_image', async () => {
    const image = await png();
    const res = await request(app()).post('/v1/images').set('content-type', 'image/png').send(image);
    expect(res.status).toBe(202);
    const { envelope } = broker.published[0]!;
    expect(envelope).toMatchObject({
      type: 'process_image',
      payload: { path: `uploads/${res.body.id}/original.png` },
    });
    expect(await readFile(join(root, 'uploads', res.body.id, 'original.png'))).toEqual(image);
  });

  it('accepts multipart with custom variants', async () => {
    const variants = [{ name: 'tiny', width: 16, format: 'png' }];
    const res = await request(app())
      .post('/v1/images')
      .field('variants', JSON.stringify(variants))
      .attach('file', await png(), { filename: 'a.png', contentType: 'image/png' });
    expect(res.status).toBe(202);
    expect(broker.published[0]!.envelope.payload).toEqual({
      path: `uploads/${res.body.id}/original.png`,
      variants,
    });
  });

  it('refuses bytes that are not an image, whatever the content type says', async () => {
    const res = await request(app())
      .post('/v1/images')
      .set('content-type', 'image/png')
      .send(Buffer.from('just text'));
    expectProblem(res, 415, 'unsupported-media-type');
    const multipart = await request(app())
      .post('/v1/images')
      .attach('file', Buffer.from('%PDF-1.4'), { filename: 'a.pdf', contentType: 'application/pdf' });
    expectProblem(multipart, 415, 'unsupported-media-type');
    const json = await request(app()).post('/v1/images').send({ path: 'x' });
    expectProblem(json, 415, 'unsupported-media-type');
    expect(broker.published).toHaveLength(0);
  });

  it('answers 413 over the image limit, raw or multipart, and keeps no file', async () => {
    const image = Buffer.concat([await png(), Buffer.alloc(4096)]);
    const raw = await request(app({ imageBytes: 2048 }))
      .post('/v1/images')
      .set('content-type', 'image/png')
      .send(image);
    expectProblem(raw, 413, 'payload-too-large');
    const multipart = await request(app({ imageBytes: 2048 }))
      .post('/v1/images')
      .attach('file', image, { filename: 'a.png', contentType: 'image/png' });
    expectProblem(multipart, 413, 'payload-too-large');
    expect(broker.published).toHaveLength(0);
  });

  it('replays the same upload with the same Idempotency-Key', async () => {
    const image = await png();
    const a = await request(app())
      .post('/v1/images')
      .set('Idempotency-Key', 'img')
      .set('content-type', 'image/png')
      .send(image);
    const b = await request(app())
      .post('/v1/images')
      .set('Idempotency-Key', 'img')
      .set('content-type', 'image/png')
      .send(image);
    expect(b.body.id).toBe(a.body.id);
    expect(broker.published).toHaveLength(1);
  });
});

describe('GET /v1/images/:id/:variant', () => {
  it('serves a produced variant and lists its URL in the job', async () => {
    const res = await request(app())
      .post('/v1/images')
      .set('content-type', 'image/png')
      .send(await png());
    const id = res.body.id as string;
    const webp = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .webp()
      .toBuffer();
    await mkdir(join(root, 'variants', id), { recursive: true });
    await writeFile(join(root, 'variants', id, 'thumbnail.webp'), webp);
    const before = await request(app()).get(`/v1/images/${id}/thumbnail`);
    expectProblem(before, 404, 'not-found');
    await state.updateJob(id, {
      status: 'succeeded',
      attempts: 1,
      result: {
        variants: [
          { name: 'thumbnail', path: `variants/${id}/thumbnail.webp`, width: 8, height: 8, format: 'webp' },
        ],
      },
    });
    const job = await request(app()).get(`/v1/jobs/${id}`);
    expect(job.body.result.variants[0].url).toBe(`/v1/images/${id}/thumbnail`);
    const served = await request(app()).get(`/v1/images/${id}/thumbnail`);
    expect(served.status).toBe(200);
    expect(served.headers['content-type']).toBe('image/webp');
    expect(Buffer.compare(served.body as Buffer, webp)).toBe(0);
    expectProblem(await request(app()).get(`/v1/images/${id}/huge`), 404, 'not-found');
  });

  it('serves only files of the output folder: not an upload, nothing through ..', async () => {
    const res = await request(app())
      .post('/v1/images')
      .set('content-type', 'image/png')
      .send(await png());
    const id = res.body.id as string;
    await writeFile(join(root, 'secret.txt'), 'not for you');
    const named = (path: string) => ({ name: 'x', path, width: 1, height: 1, format: 'png' });
    await state.updateJob(id, {
      status: 'succeeded',
      result: {
        variants: [
          named(`uploads/${id}/original.png`),
          { ...named('variants/../secret.txt'), name: 'up' },
          { ...named('variants/../../etc/passwd'), name: 'out' },
        ],
      },
    });
    for (const name of ['x', 'up', 'out'])
      expectProblem(await request(app()).get(`/v1/images/${id}/${name}`), 404, 'not-found');
  });
});

describe('GET /v1/jobs/:id attemptHistory', () => {
  it('lists the attempt history, with stacks only for holders of the token', async () => {
    const token = 'a-long-enough-token';
    const ok = await request(app({ apiToken: token }))
      .post('/v1/emails')
      .set('Authorization', `Bearer ${token}`)
      .send(email);
    const id = ok.body.id as string;
    expect((await request(app()).get(`/v1/jobs/${id}`)).body.attemptHistory).toEqual([]);
    const failed = {
      attempt: 1,
      startedAt: '2026-03-01T10:00:00.000Z',
      endedAt: '2026-03-01T10:00:01.500Z',
      durationMs: 1500,
      worker: 'host:42:abcd1234',
      outcome: 'retrying' as const,
      error: 'SMTP 421 try later',
      stack: 'RetryableError: SMTP 421 try later\n    at send (transport.ts:1:1)',
    };
    const running = { attempt: 2, startedAt: '2026-03-01T10:01:00.000Z', worker: 'host:42:abcd1234' };
    await state.recordAttempt(id, failed);
    await state.recordAttempt(id, running);
    const authorized = await request(app({ apiToken: token }))
      .get(`/v1/jobs/${id}`)
      .set('Authorization', `Bearer ${token}`);
    expect(authorized.body.attemptHistory).toEqual([failed, running]);
    const { stack: _stack, ...withoutStack } = failed;
    const anonymous = await request(app({ apiToken: token })).get(`/v1/jobs/${id}`);
    expect(anonymous.status).toBe(200);
    expect(anonymous.body.attemptHistory).toEqual([withoutStack, running]);
    const wrong = await request(app({ apiToken: token }))
      .get(`/v1/jobs/${id}`)
      .set('Authorization', 'Bearer nope');
    expect(wrong.body.attemptHistory).toEqual([withoutStack, running]);
  });
});

describe('GET /v1/jobs/:id payload', () => {
  it('returns the payload only to holders of the token, and returns it when no token is set', async () => {
    const token = 'a-long-enough-token';
    const bearer = `Bearer ${token}`;
    const posted = await request(app({ apiToken: token }))
      .post('/v1/emails')
      .set('Authorization', bearer)
      .send(email);
    const path = `/v1/jobs/${posted.body.id as string}`;
    const authorized = await request(app({ apiToken: token }))
      .get(path)
      .set('Authorization', bearer);
    expect(authorized.body.payload).toEqual(email);
    expect(authorized.body).not.toHaveProperty('payloadTruncated');
    const anonymous = await request(app({ apiToken: token })).get(path);
    expect(anonymous.status).toBe(200);
    expect(anonymous.body).not.toHaveProperty('payload');
    const wrong = await request(app({ apiToken: token }))
      .get(path)
      .set('Authorization', 'Bearer nope');
    expect(wrong.body).not.toHaveProperty('payload');
    expect((await request(app()).get(path)).body.payload).toEqual(email);
  });

  it('keeps no payload over 16 KiB of JSON, and says so with payloadTruncated', async () => {
    const large = { ...email, body: 'x'.repeat(16 * 1024) };
    const posted = await request(app()).post('/v1/emails').send(large);
    expect(posted.status).toBe(202);
    const job = await request(app()).get(`/v1/jobs/${posted.body.id as string}`);
    expect(job.body.payloadTruncated).toBe(true);
    expect(job.body).not.toHaveProperty('payload');
  });
});

describe('the job POSTs, served before Express (direct-routes.ts)', () => {
  it('answers the same on the paths only Express matches, and counts them under one route', async () => {
    const server = app();
    for (const path of ['/v1/emails', '/v1/emails?from=bench', '/v1/emails/', '/V1/Emails']) {
      const res = await request(server).post(path).send(email);
      expect(res.status, path).toBe(202);
      expect(res.headers.location).toBe(`/v1/jobs/${res.body.id}`);
    }
    expect(broker.published).toHaveLength(4);
    const metrics = await request(server).get('/metrics');
    expect(metrics.text).toMatch(
      /polyqueue_http_requests_total\{method="POST",route="\/v1\/emails",status="202"\} 4/,
    );
    expect(metrics.text).toMatch(
      /polyqueue_http_request_duration_seconds_count\{method="POST",route="\/v1\/emails"\} 4/,
    );
  });

  it('answers a store that throws with a 500 problem naming the request, and logs it', async () => {
    const logged: unknown[] = [];
    const logger = { ...silentLogger(), error: (fields: unknown) => logged.push(fields) };
    const server = createServer({ broker, state, storageRoot: root, logger });
    state.failWith = new Error('disk I/O error');
    const res = await request(server).post('/v1/jobs?x=1').send({ type: 'send_email', payload: email });
    expectProblem(res, 500, 'internal-error');
    expect(res.body.instance).toBe('/v1/jobs?x=1');
    expect(logged).toEqual([
      expect.objectContaining({ method: 'POST', path: '/v1/jobs', err: state.failWith }),
    ]);
    expect(broker.published).toHaveLength(0);
  });
});

describe('auth, health and metrics', () => {
  it('requires the bearer token on write endpoints only', async () => {
    const token = 'a-long-enough-token';
    expectProblem(
      await request(app({ apiToken: token }))
        .post('/v1/emails')
        .send(email),
      401,
      'unauthorized',
    );
    const wrong = await request(app({ apiToken: token }))
      .post('/v1/emails')
      .set('Authorization', 'Bearer nope')
      .send(email);
    expectProblem(wrong, 401, 'unauthorized');
    expect(wrong.headers['www-authenticate']).toMatch(/^Bearer/);
    const ok = await request(app({ apiToken: token }))
      .post('/v1/emails')
      .set('Authorization', `Bearer ${token}`)
      .send(email);
    expect(ok.status).toBe(202);
    expect((await request(app({ apiToken: token })).get(`/v1/jobs/${ok.body.id}`)).status).toBe(200);
  });

  it('reports liveness, readiness and metrics', async () => {
    expect((await request(app()).get('/healthz')).status).toBe(200);
    expect((await request(app()).get('/readyz')).body).toEqual({
      status: 'ready',
      checks: { broker: 'ok', state: 'ok' },
    });
    state.failWith = new Error('database is locked');
    const down = await request(app()).get('/readyz');
    expect(down.status).toBe(503);
    expect(down.body.checks.state).toBe('database is locked');
    state.failWith = undefined;
    const server = app();
    await request(server).post('/v1/emails').send(email);
    const metrics = await request(server).get('/metrics');
    expect(metrics.text).toMatch(
      /polyqueue_http_requests_total\{method="POST",route="\/v1\/emails",status="202"\} 1/,
    );
    expect(metrics.text).toMatch(/polyqueue_jobs_enqueued_total\{type="send_email"\} 1/);
    expect(metrics.text).toMatch(/polyqueue_queue_depth\{queue="email",state="ready"\} 1/);
  });

  it('answers unknown routes and unknown jobs with 404 problems', async () => {
    expectProblem(await request(app()).get('/v2/nothing'), 404, 'not-found');
    expectProblem(await request(app()).get('/v1/jobs/does-not-exist'), 404, 'not-found');
  });
});
