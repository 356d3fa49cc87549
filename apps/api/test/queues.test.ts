import { MemoryStateStore } from '@polyqueue/app-runtime';
import { MemoryQueueControls } from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { RecordingBroker } from './helpers';

function app(controls: MemoryQueueControls, apiToken?: string) {
  return createServer({
    broker: new RecordingBroker(),
    state: new MemoryStateStore(),
    controls,
    storageRoot: '/nonexistent',
    ...(apiToken ? { apiToken } : {}),
  });
}

describe('POST /v1/queues/:queue/pause and /resume', () => {
  it('pauses and resumes a queue in the flags the workers read, answering the new state', async () => {
    const controls = new MemoryQueueControls();
    const server = app(controls);
    const paused = await request(server).post('/v1/queues/email/pause');
    expect(paused.status).toBe(200);
    expect(paused.body).toEqual({ queue: 'email', paused: true, changed: true });
    expect(await controls.paused()).toEqual(new Set(['email']));
    const again = await request(server).post('/v1/queues/email/pause');
    expect(again.body).toEqual({ queue: 'email', paused: true, changed: false });

    const metrics = await request(server).get('/metrics');
    expect(metrics.text).toMatch(/^polyqueue_queue_paused\{queue="email"\} 1$/m);
    for (const other of jobQueues.filter((q) => q !== 'email'))
      expect(metrics.text).toMatch(new RegExp(`^polyqueue_queue_paused\\{queue="${other}"\\} 0$`, 'm'));

    const resumed = await request(server).post('/v1/queues/email/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body).toEqual({ queue: 'email', paused: false, changed: true });
    expect(await controls.paused()).toEqual(new Set());
  });

  it('answers 404 problem+json naming the known queues for an unknown one', async () => {
    const res = await request(app(new MemoryQueueControls())).post('/v1/queues/emial/pause');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: 'urn:polyqueue:problem:not-found', status: 404 });
    expect(res.body.detail).toBe(`no queue "emial"; the queues are ${jobQueues.join(', ')}`);
  });

  it('requires the bearer token like the other POSTs', async () => {
    const controls = new MemoryQueueControls();
    const server = app(controls, 's3cret');
    expect((await request(server).post('/v1/queues/email/pause')).status).toBe(401);
    expect(await controls.paused()).toEqual(new Set());
    const ok = await request(server).post('/v1/queues/email/pause').set('Authorization', 'Bearer s3cret');
    expect(ok.status).toBe(200);
  });

  it('answers 503 problem+json when the state store cannot be reached', async () => {
    const controls = new MemoryQueueControls();
    controls.failWith = new Error('connect ECONNREFUSED');
    const res = await request(app(controls)).post('/v1/queues/email/pause');
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body.detail).toBe(
      'could not pause queue email: the state store did not answer (connect ECONNREFUSED); try again',
    );
  });
});
