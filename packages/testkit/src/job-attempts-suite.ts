import { randomUUID } from 'node:crypto';
import {
  ATTEMPT_ERROR_CHARS,
  ATTEMPT_STACK_CHARS,
  ATTEMPTS_KEPT,
  type JobAttempt,
  type JobAttemptLog,
  type JobStateStore,
} from '@polyqueue/core';
import { expect, it } from 'vitest';

/** Every polyqueue store keeps attempt histories; a store without them fails here, by name. */
function attemptLog(store: JobStateStore): JobAttemptLog {
  if (!store.recordAttempt || !store.listAttempts)
    throw new Error('this state store has no recordAttempt / listAttempts (job-attempts.ts)');
  return store as JobAttemptLog;
}

function at(base: number, seconds: number): string {
  return new Date(base + seconds * 1000).toISOString();
}

/**
 * The attempt-history cases of runStateStoreSuite: what GET /v1/jobs/:id lists as `attempts`.
 * Each case uses job ids of its own.
 */
export function runJobAttemptCases(getStore: () => JobStateStore): void {
  it('keeps each attempt: its start, then its end in place of the start, oldest first', async () => {
    const log = attemptLog(getStore());
    const jobId = `attempts-${randomUUID()}`;
    const base = Date.parse('2026-03-01T10:00:00.000Z');
    expect(await log.listAttempts(jobId)).toEqual([]);

    const first: JobAttempt = { attempt: 1, startedAt: at(base, 0), worker: 'host-a:101:aaaa' };
    await log.recordAttempt(jobId, first);
    expect(await log.listAttempts(jobId)).toEqual([first]); // running: no end, no outcome

    const failed: JobAttempt = {
      ...first,
      endedAt: at(base, 2),
      durationMs: 2000,
      outcome: 'retrying',
      error: 'SMTP 421 try later',
      stack: 'RetryableError: SMTP 421 try later\n    at send (transport.ts:1:1)',
    };
    await log.recordAttempt(jobId, failed);
    const second: JobAttempt = { attempt: 2, startedAt: at(base, 5), worker: 'host-b:202:bbbb' };
    await log.recordAttempt(jobId, second);
    const done: JobAttempt = { ...second, endedAt: at(base, 6), durationMs: 1000, outcome: 'succeeded' };
    await log.recordAttempt(jobId, done);
    expect(await log.listAttempts(jobId)).toEqual([failed, done]);
    expect(await log.listAttempts(`attempts-${randomUUID()}`)).toEqual([]); // another job's are its own
  });

  it('keeps a redriven job`s attempts apart from its first run`s (same numbers, later starts)', async () => {
    const log = attemptLog(getStore());
    const jobId = `attempts-${randomUUID()}`;
    const base = Date.parse('2026-03-02T10:00:00.000Z');
    const firstRun: JobAttempt = {
      attempt: 1,
      startedAt: at(base, 0),
      endedAt: at(base, 1),
      durationMs: 1000,
      outcome: 'dead',
      error: 'boom',
    };
    const redriven: JobAttempt = {
      attempt: 1,
      startedAt: at(base, 60),
      endedAt: at(base, 61),
      durationMs: 1000,
      outcome: 'succeeded',
    };
    await log.recordAttempt(jobId, { attempt: 1, startedAt: firstRun.startedAt });
    await log.recordAttempt(jobId, firstRun);
    await log.recordAttempt(jobId, { attempt: 1, startedAt: redriven.startedAt });
    await log.recordAttempt(jobId, redriven);
    expect(await log.listAttempts(jobId)).toEqual([firstRun, redriven]);
  });

  it(`keeps the newest ${ATTEMPTS_KEPT} attempts, and bounds an error and its stack`, async () => {
    const log = attemptLog(getStore());
    const jobId = `attempts-${randomUUID()}`;
    const base = Date.parse('2026-03-03T10:00:00.000Z');
    const total = ATTEMPTS_KEPT + 5;
    for (let n = 1; n <= total; n++) {
      const startedAt = at(base, n * 10);
      await log.recordAttempt(jobId, { attempt: n, startedAt, worker: 'w' });
      const last = n === total;
      await log.recordAttempt(jobId, {
        attempt: n,
        startedAt,
        endedAt: at(base, n * 10 + 1),
        durationMs: 1000,
        worker: 'w',
        outcome: last ? 'dead' : 'retrying',
        error: last ? 'x'.repeat(ATTEMPT_ERROR_CHARS * 3) : `failure ${n}`,
        ...(last ? { stack: `Error: x\n${'    at frame (file.ts:1:1)\n'.repeat(2_000)}` } : {}),
      });
    }
    const kept = await log.listAttempts(jobId);
    expect(kept.map((a) => a.attempt)).toEqual(
      Array.from({ length: ATTEMPTS_KEPT }, (_, i) => total - ATTEMPTS_KEPT + 1 + i),
    );
    const last = kept[kept.length - 1]!;
    expect(last.outcome).toBe('dead');
    expect(last.error!.length).toBeLessThanOrEqual(ATTEMPT_ERROR_CHARS);
    expect(last.stack!.length).toBeLessThanOrEqual(ATTEMPT_STACK_CHARS);
    expect(last.stack!.startsWith('Error: x\n    at frame')).toBe(true);
  });
}
