import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv, createStateStore } from '@polyqueue/brokers';
import { createEnvelope, type JobStatus } from '@polyqueue/core';
import { afterAll, describe, expect, it } from 'vitest';
import { jobsCommand } from '../src/jobs/bulk';
import { deadCommand } from '../src/queues/commands';

const dir = mkdtempSync(join(tmpdir(), 'pq-cli-bulk-'));
const env = {
  BROKER: 'sqlite',
  SQLITE_PATH: join(dir, 'q.db'),
  STATE_URL: `sqlite:${join(dir, 'state.db')}`,
};
const store = await createStateStore(env.STATE_URL);
afterAll(() => store.close());

/** A send_email job that died for real in the broker, with its record saying so. */
async function deadJob(reason: string): Promise<string> {
  const broker = await createBrokerFromEnv(env);
  const envelope = createEnvelope('send_email', { to: 'a@example.com', subject: 'Hi' });
  await broker.publish('email', [{ envelope }]);
  const controller = new AbortController();
  await broker.consume(
    'email',
    async (d) => {
      await d.deadLetter(reason);
      controller.abort();
    },
    { concurrency: 1, signal: controller.signal },
  );
  await broker.close();
  await record(envelope.id, 'dead', reason);
  return envelope.id;
}

async function record(id: string, status: JobStatus, lastError?: string, type = 'send_email'): Promise<void> {
  const at = new Date().toISOString();
  await store.createJob({ id, type, queue: 'email', status, attempts: 1, createdAt: at, updatedAt: at });
  if (lastError) await store.updateJob(id, { lastError });
}

async function run(command: typeof jobsCommand, args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await command(
    args,
    env,
    (l) => out.push(l),
    (l) => err.push(l),
  );
  return { code, out, err };
}

async function deadCount(): Promise<number> {
  const broker = await createBrokerFromEnv(env);
  try {
    return (await broker.stats('email')).dead;
  } finally {
    await broker.close();
  }
}

describe('polyqueue jobs retry|cancel and dead redrive --match', () => {
  it('counts with --dry-run, then retries every dead job of a type', async () => {
    const ids = [await deadJob('550 mailbox gone'), await deadJob('550 mailbox gone')];
    const filter = ['--status', 'dead', '--type', 'send_email'];
    expect(await run(jobsCommand, ['retry', ...filter, '--dry-run'])).toEqual({
      code: 0,
      out: ['dry run: 2 jobs match; retry would take the dead ones; nothing changed'],
      err: [],
    });
    expect(await deadCount()).toBe(2);
    expect(await run(jobsCommand, ['retry', ...filter])).toEqual({
      code: 0,
      out: ['retried 2 jobs of 2 matching'],
      err: [],
    });
    expect(await deadCount()).toBe(0);
    for (const id of ids) expect((await store.getJob(id))?.status).toBe('queued');
  });

  it('cancels the unfinished jobs of a type, lists the finished ones as skipped, exit 1', async () => {
    await record('c-queued', 'queued', undefined, 'bulk_cli');
    await record('c-done', 'succeeded', undefined, 'bulk_cli');
    expect(await run(jobsCommand, ['cancel', '--type', 'bulk_cli', '--json'])).toEqual({
      code: 1,
      out: [
        JSON.stringify({
          action: 'cancel',
          matched: 2,
          capped: false,
          done: 1,
          skipped: [{ id: 'c-done', reason: 'succeeded: already finished' }],
        }),
      ],
      err: [],
    });
    expect((await store.getJob('c-queued'))?.status).toBe('cancelled');
  });

  it('redrives the dead letters whose reason holds a text', async () => {
    await deadJob('421 try later');
    await deadJob('554 spam');
    expect((await run(deadCommand, ['redrive', 'email', '--match', '421', '--dry-run'])).out).toEqual([
      'dry run: 1 dead letter of email match; nothing changed',
    ]);
    expect((await run(deadCommand, ['redrive', 'email', '--match', '421'])).out).toEqual([
      'redrove 1 of 1 dead letter matching back to email',
    ]);
    expect(await deadCount()).toBe(1);
  });

  it('refuses a run without a filter or with a bad status', async () => {
    await expect(run(jobsCommand, ['retry'])).rejects.toThrow(/name at least one of --status/);
    await expect(run(jobsCommand, ['cancel', '--status', 'done'])).rejects.toThrow(/--status must be one of/);
  });
});
