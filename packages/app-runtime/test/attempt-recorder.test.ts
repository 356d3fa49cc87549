/**
 * The attempt history through the worker runtime on the memory broker: each attempt's start,
 * end, worker, duration, outcome, and for a failure its error and stack.
 */
import { createBrokerFromEnv } from '@polyqueue/brokers';
import {
  createEnvelope,
  createWorker,
  type HookAnswer,
  type JobStateStore,
  NonRetryableError,
  type OutcomeEvent,
} from '@polyqueue/core';
import { deferred, eventually } from '@polyqueue/testkit';
import { describe, expect, it } from 'vitest';
import { recordAttempts } from '../src/attempt-recorder';
import { createJobRecorder } from '../src/job-recorder';
import { MemoryStateStore } from '../src/memory-state-store';

async function recordedJob(state: JobStateStore, id: string, queue: string) {
  const at = new Date().toISOString();
  await state.createJob({
    id,
    type: 'work',
    queue,
    status: 'queued',
    attempts: 0,
    createdAt: at,
    updatedAt: at,
  });
  return createEnvelope('work', { n: 1 }, { id });
}

describe('recordAttempts', () => {
  it('keeps each attempt of a job: a retried failure with its stack, then a success, by this worker', async () => {
    const state = new MemoryStateStore();
    const broker = await createBrokerFromEnv({ BROKER: 'memory' });
    const queue = 'attempts_retry';
    const stop = new AbortController();
    const ready = deferred();
    let runs = 0;
    const worker = createWorker({
      broker,
      queue,
      handlers: {
        work: {
          async handle() {
            runs += 1;
            if (runs === 1) throw new Error('the first try fails');
            if (runs === 3) throw new NonRetryableError('refused for good');
            return { ok: true };
          },
        },
      },
      idempotency: state,
      jobs: state,
      backoff: { baseMs: 1, maxMs: 5 },
      onOutcome: recordAttempts(createJobRecorder({ state, broker }), { state, worker: 'host:1:abcd' }),
    });
    const running = worker.run(stop.signal, () => ready.resolve());
    await Promise.race([ready.promise, running]);
    try {
      await broker.publish(queue, [{ envelope: await recordedJob(state, 'twice', queue) }]);
      await eventually(
        () => state.getJob('twice'),
        (j) => j?.status === 'succeeded',
        'twice succeeded',
      );
      const attempts = await state.listAttempts('twice');
      expect(attempts).toEqual([
        {
          attempt: 1,
          startedAt: expect.any(String),
          endedAt: expect.any(String),
          durationMs: expect.any(Number),
          worker: 'host:1:abcd',
          outcome: 'retrying',
          error: 'the first try fails',
          stack: expect.stringMatching(/^Error: the first try fails\n\s+at /),
        },
        {
          attempt: 2,
          startedAt: expect.any(String),
          endedAt: expect.any(String),
          durationMs: expect.any(Number),
          worker: 'host:1:abcd',
          outcome: 'succeeded',
        },
      ]);
      const first = attempts[0]!;
      expect(Date.parse(first.endedAt!) - Date.parse(first.startedAt)).toBe(first.durationMs);

      // A job that fails for good: one attempt, dead, with the reason and the stack.
      await broker.publish(queue, [{ envelope: await recordedJob(state, 'dead-one', queue) }]);
      await eventually(
        () => state.getJob('dead-one'),
        (j) => j?.status === 'dead',
        'dead-one dead',
      );
      expect(await state.listAttempts('dead-one')).toEqual([
        expect.objectContaining({
          attempt: 1,
          outcome: 'dead',
          error: 'refused for good',
          stack: expect.stringContaining('NonRetryableError: refused for good'),
        }),
      ]);
    } finally {
      stop.abort();
      await running;
      await broker.close();
    }
  });

  it('writes the start beside the status write, so a running attempt shows with no end', async () => {
    const state = new MemoryStateStore();
    const inner = deferred<HookAnswer>();
    const hook = recordAttempts(() => inner.promise, { state, worker: 'w', now: () => 1_000 });
    const envelope = await recordedJob(state, 'running', 'q');
    const event: OutcomeEvent = { envelope, messageId: 'm', queue: 'q', outcome: 'processing', attempt: 1 };
    const answered = hook(event);
    // The hook's own write has not finished; the start is written meanwhile.
    const started = await eventually(
      () => state.listAttempts('running'),
      (attempts) => attempts.length > 0,
      'the start written',
    );
    expect(started).toEqual([{ attempt: 1, startedAt: new Date(1_000).toISOString(), worker: 'w' }]);
    inner.resolve('cancelled');
    expect(await answered).toBe('cancelled'); // the wrapped hook's answer is kept
  });

  it('records nothing for a redelivery found already done, and drops a history write that fails', async () => {
    const state = new MemoryStateStore();
    const seen: string[] = [];
    const hook = recordAttempts(
      async (e) => {
        seen.push(e.outcome);
      },
      { state },
    );
    const envelope = await recordedJob(state, 'dup', 'q');
    await hook({ envelope, messageId: 'm', queue: 'q', outcome: 'skipped_duplicate', attempt: 2 });
    expect(await state.listAttempts('dup')).toEqual([]);
    state.recordAttempt = async () => {
      throw new Error('store down');
    };
    await hook({ envelope, messageId: 'm', queue: 'q', outcome: 'dead', attempt: 1, error: 'x' });
    expect(seen).toEqual(['skipped_duplicate', 'dead']);
  });
});
