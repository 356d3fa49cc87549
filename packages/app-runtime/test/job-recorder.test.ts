import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEnvelope, type Envelope } from '@polyqueue/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobRecorder } from '../src/job-recorder';
import { MemoryStateStore } from '../src/memory-state-store';
import { PathEscapeError, resolveExistingInStorage, resolveInStorage } from '../src/storage';

function setup() {
  const state = new MemoryStateStore();
  const events: { topic: string; event: Envelope }[] = [];
  const broker = {
    publishEvent: async (topic: string, event: Envelope) => void events.push({ topic, event }),
  };
  return { state, events, record: createJobRecorder({ state, broker }) };
}

async function createdJob(state: MemoryStateStore, id: string) {
  const at = new Date().toISOString();
  await state.createJob({
    id,
    type: 'send_email',
    queue: 'email',
    status: 'queued',
    attempts: 0,
    createdAt: at,
    updatedAt: at,
  });
  return createEnvelope('send_email', {}, { id });
}

describe('createJobRecorder', () => {
  it('walks a job through processing, retrying and succeeded, publishing job.retrying and job.succeeded', async () => {
    const { state, events, record } = setup();
    const envelope = await createdJob(state, 'j1');
    const base = { envelope, messageId: 'm1', queue: 'email' };
    await record({ ...base, outcome: 'processing', attempt: 1 });
    expect(await state.getJob('j1')).toMatchObject({ status: 'processing', attempts: 1 });
    await record({ ...base, outcome: 'retrying', attempt: 1, error: 'SMTP 451', retryInMs: 900 });
    expect(await state.getJob('j1')).toMatchObject({
      status: 'retrying',
      attempts: 1,
      lastError: 'SMTP 451',
    });
    await record({ ...base, outcome: 'succeeded', attempt: 2, result: { messageId: '<j1@x>' } });
    expect(await state.getJob('j1')).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      result: { messageId: '<j1@x>' },
    });
    expect(events.map((e) => [e.topic, e.event.type, e.event.id])).toEqual([
      ['job-events', 'job.retrying', 'j1:job.retrying:1'],
      ['job-events', 'job.succeeded', 'j1:job.succeeded:2'],
    ]);
    expect(events[0]!.event.payload).toEqual({
      jobId: 'j1',
      type: 'send_email',
      queue: 'email',
      attempt: 1,
      error: 'SMTP 451',
      retryInMs: 900,
    });
  });

  it('records a dead job with its reason, and publishes job.dead even for a body that was not an envelope', async () => {
    const { state, events, record } = setup();
    const envelope = await createdJob(state, 'j2');
    await record({
      envelope,
      messageId: 'm2',
      queue: 'email',
      outcome: 'dead',
      attempt: 1,
      error: 'SMTP 550: no such user',
    });
    expect(await state.getJob('j2')).toMatchObject({ status: 'dead', lastError: 'SMTP 550: no such user' });
    await record({
      envelope: undefined,
      messageId: 'raw-7',
      queue: 'email',
      outcome: 'dead',
      attempt: 1,
      error: 'malformed message',
    });
    expect(events.map((e) => e.event.payload)).toMatchObject([
      { jobId: 'j2' },
      { jobId: 'raw-7', type: 'unknown' },
    ]);
  });

  it('records as succeeded a redelivered job found already done (its first ack was lost)', async () => {
    const { state, events, record } = setup();
    const envelope = await createdJob(state, 'j4');
    const base = { envelope, messageId: 'm4', queue: 'email' };
    await record({ ...base, outcome: 'processing', attempt: 1 });
    // The handler ran and the key was marked done, but the ack failed: the job comes back.
    await record({ ...base, outcome: 'skipped_duplicate', attempt: 2, result: { messageId: '<j4@x>' } });
    expect(await state.getJob('j4')).toMatchObject({ status: 'succeeded', result: { messageId: '<j4@x>' } });
    expect(events).toEqual([]);
  });

  it('writes processing only over a record not cancelled, answering cancelled for one that is', async () => {
    const { state, events, record } = setup();
    const envelope = await createdJob(state, 'c1');
    const base = { envelope, messageId: 'm1', queue: 'email' };
    // A fast worker before the API's own `queued`: the record still says pending.
    await state.updateJob('c1', { status: 'pending' });
    expect(await record({ ...base, outcome: 'processing', attempt: 1 })).toBeUndefined();
    expect(await state.getJob('c1')).toMatchObject({ status: 'processing', attempts: 1 });

    await state.updateJob('c1', { status: 'cancelled' });
    expect(await record({ ...base, outcome: 'processing', attempt: 2 })).toBe('cancelled');
    expect((await state.getJob('c1'))?.status).toBe('cancelled');
    await record({ ...base, outcome: 'cancelled', attempt: 2 });
    expect(events.map((e) => e.event.id)).toEqual(['c1:job.cancelled:2']);
    // Another producer's job has no record: nothing to write, nothing to answer.
    const foreign = { ...base, envelope: createEnvelope('send_email', {}, { id: 'foreign' }) };
    expect(await record({ ...foreign, outcome: 'processing', attempt: 1 })).toBeUndefined();
    expect(await state.getJob('foreign')).toBeUndefined();
  });

  it('still publishes the event when the state store is down, then reports the failure', async () => {
    const { state, events, record } = setup();
    const envelope = await createdJob(state, 'j3');
    state.failWith = new Error('state down');
    await expect(
      record({ envelope, messageId: 'm', queue: 'email', outcome: 'succeeded', attempt: 1 }),
    ).rejects.toThrow('state down');
    expect(events).toHaveLength(1);
  });
});

describe('storage paths', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'polyqueue-root-'));
    await mkdir(join(root, 'a'));
    await writeFile(join(root, 'a', 'f.txt'), 'x');
    await symlink(tmpdir(), join(root, 'out'));
  });
  afterAll(async () => rm(root, { recursive: true, force: true }));

  it('resolves paths inside the root and refuses every way out', async () => {
    expect(resolveInStorage(root, 'a/f.txt')).toBe(join(root, 'a', 'f.txt'));
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a/\0b', '..', '.', 'C:\\x']) {
      expect(() => resolveInStorage(root, bad), bad).toThrow(PathEscapeError);
    }
    expect(await resolveExistingInStorage(root, 'a/f.txt')).toMatch(/f\.txt$/);
    await expect(resolveExistingInStorage(root, 'out')).rejects.toThrow(PathEscapeError);
    await expect(resolveExistingInStorage(root, 'a/none')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
