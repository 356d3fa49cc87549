import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStateStore } from '@polyqueue/brokers';
import type { JobStatus } from '@polyqueue/core';
import { afterAll, describe, expect, it } from 'vitest';
import { cancelCommand } from '../src/jobs/cancel';

const dir = mkdtempSync(join(tmpdir(), 'pq-cli-cancel-'));
const env = { STATE_URL: `sqlite:${join(dir, 'state.db')}` };
const store = await createStateStore(env.STATE_URL);
afterAll(() => store.close());

async function job(id: string, status: JobStatus): Promise<void> {
  const at = new Date().toISOString();
  await store.createJob({
    id,
    type: 'send_email',
    queue: 'email',
    status,
    attempts: 0,
    createdAt: at,
    updatedAt: at,
  });
}

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await cancelCommand(
    args,
    env,
    (l) => out.push(l),
    (l) => err.push(l),
  );
  return { code, out, err };
}

describe('polyqueue cancel', () => {
  it('cancels a queued job and a running one, as DELETE /v1/jobs/:id does', async () => {
    await job('q1', 'queued');
    expect(await run(['q1'])).toEqual({ code: 0, out: ['cancelled q1: it will not run'], err: [] });
    expect((await store.getJob('q1'))?.status).toBe('cancelled');
    await job('p1', 'processing');
    const running = await run(['p1']);
    expect(running.code).toBe(0);
    expect(running.out[0]).toMatch(/it was running; its worker aborts it within about a second/);
    expect((await store.getJob('p1'))?.status).toBe('cancelled');
  });

  it('leaves a finished job as it is and exits 1; an unknown id too', async () => {
    await job('s1', 'succeeded');
    expect(await run(['s1'])).toMatchObject({
      code: 1,
      err: [expect.stringMatching(/already finished \(status succeeded\)/)],
    });
    expect((await store.getJob('s1'))?.status).toBe('succeeded');
    expect(await run(['nope'])).toMatchObject({ code: 1, err: [expect.stringMatching(/no job "nope"/)] });
  });

  it('explains a bad call', async () => {
    await expect(run([])).rejects.toThrow(/name one job id/);
    await expect(run(['a', 'b'])).rejects.toThrow(/name one job id/);
  });
});
