/**
 * Cancellation (DELETE /v1/jobs/:id through core's cancelJobRecord) on the real broker, with
 * core's worker runtime: a job cancelled while delayed or queued is acked unrun, and a running
 * job's handler has its AbortSignal aborted and ends cancelled, with no retry. The job records
 * are a map in this process, as the state store shares them between the API and the workers
 * (each store's compare-and-set has its own contract suite); the hook answers 'cancelled' for a
 * cancelled record as the apps' job recorder does. What this checks is that every driver carries
 * the ack of an unrun job and of an aborted one without redelivering it or dead-lettering it.
 */
import {
  cancelJobRecord,
  type Envelope,
  type HookAnswer,
  type JobContext,
  type JobPatch,
  type JobRecord,
  type JobStateStore,
  type JobStatus,
  MemoryIdempotencyStore,
  type OutcomeEvent,
} from '@polyqueue/core';
import { expect } from 'vitest';
import { eventually } from '../spy';
import { EMPTY, type Harness, job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

/** Job records in this process: the compare-and-set that cancelJobRecord and the hook rely on. */
class JobRecords implements Pick<JobStateStore, 'getJob' | 'updateJob'> {
  readonly #records = new Map<string, JobRecord>();

  add(envelope: Envelope, queue: string): void {
    const at = new Date().toISOString();
    this.#records.set(envelope.id, {
      id: envelope.id,
      type: envelope.type,
      queue,
      status: 'queued',
      attempts: 0,
      createdAt: at,
      updatedAt: at,
    });
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const record = this.#records.get(id);
    return record && { ...record };
  }

  async updateJob(id: string, patch: JobPatch, onlyIfStatus?: JobStatus): Promise<boolean> {
    const record = this.#records.get(id);
    if (!record || (onlyIfStatus && record.status !== onlyIfStatus)) return false;
    this.#records.set(id, { ...record, ...patch, updatedAt: new Date().toISOString() });
    return true;
  }
}

/**
 * The worker's onOutcome hook, as the apps' job recorder writes it: `processing` never over a
 * `cancelled` record (the hook answers 'cancelled' and the runtime acks the job unrun), every
 * other outcome written as it comes. Each event is kept for the scenario to read.
 */
function recordOutcomes(records: JobRecords, events: OutcomeEvent[]) {
  return async (event: OutcomeEvent): Promise<HookAnswer> => {
    events.push(event);
    const id = event.envelope?.id;
    if (!id) return;
    if (event.outcome !== 'processing') {
      await records.updateJob(id, {
        status: event.outcome === 'skipped_duplicate' ? 'succeeded' : event.outcome,
      });
      return;
    }
    const record = await records.getJob(id);
    if (record?.status === 'cancelled') return 'cancelled';
    if (record) await records.updateJob(id, { status: 'processing', attempts: event.attempt }, record.status);
  };
}

/** The outcomes the worker told for one job, in order. */
function outcomesOf(events: readonly OutcomeEvent[], id: string): string[] {
  return events.filter((e) => e.envelope?.id === id).map((e) => e.outcome);
}

/**
 * Runs a worker on `queue` whose handler records what it ran, publishes the cancelled job and a
 * sentinel (with `delayMs`), cancels the first before the worker can receive it, and checks the
 * worker acks it unrun while the sentinel runs.
 */
async function cancelBeforeRun(h: Harness, label: string, delayMs?: number): Promise<void> {
  const queue = uniqueQueueName(label);
  const records = new JobRecords();
  const events: OutcomeEvent[] = [];
  const ran: string[] = [];
  const cancelled = job({ cancelled: true });
  const sentinel = job({ sentinel: true });
  for (const e of [cancelled, sentinel]) records.add(e, queue);
  await h.broker.publish(queue, messages([cancelled, sentinel], delayMs ? { delayMs } : {}));
  const result = await cancelJobRecord(records, cancelled.id);
  expect(result.outcome).toBe('cancelled');
  // Still waiting (delayed, or queued with no consumer yet) when the cancel landed.
  await h.statsEventually(queue, delayMs ? { ready: 0, delayed: 2 } : { ready: 2 }, 'both jobs waiting');

  const worker = h.runWorker({
    queue,
    idempotency: new MemoryIdempotencyStore(),
    jobs: records,
    onOutcome: recordOutcomes(records, events),
    handlers: {
      test_job: {
        handle: async (_payload: unknown, context: JobContext) => {
          ran.push(context.envelope.id);
        },
      },
    },
  });
  await worker.ready;
  await eventually(
    async () => [outcomesOf(events, cancelled.id), outcomesOf(events, sentinel.id)],
    ([c, s]) => c!.includes('cancelled') && s!.includes('succeeded'),
    'the cancelled job acked unrun and the sentinel run',
    h.timeoutMs + (delayMs ?? 0),
  );
  await h.statsEventually(queue, EMPTY, 'nothing left: the cancelled job acked, not dead-lettered');
  expect(ran).toEqual([sentinel.id]);
  expect(outcomesOf(events, cancelled.id)).toEqual(['processing', 'cancelled']);
  expect((await records.getJob(cancelled.id))?.status).toBe('cancelled');
}

export const cancelledDelayedNeverRuns: Scenario = {
  name: 'a cancelled delayed job never runs: acked unrun when it comes due',
  applies: (c) => c.delayedDelivery !== 'none',
  timeoutMs: 90_000,
  run: (h) => cancelBeforeRun(h, 'canceldelay', 3_000),
};

export const cancelledQueuedNeverRuns: Scenario = {
  name: 'a queued job cancelled before it runs never runs',
  timeoutMs: 90_000,
  run: (h) => cancelBeforeRun(h, 'cancelqueued'),
};

export const cancelledRunningAborts: Scenario = {
  name: "a running job's handler gets its AbortSignal and ends cancelled, no retry",
  timeoutMs: 90_000,
  async run(h) {
    const queue = uniqueQueueName('cancelrun');
    const records = new JobRecords();
    const events: OutcomeEvent[] = [];
    const started: string[] = [];
    const reasons: unknown[] = [];
    const worker = h.runWorker({
      queue,
      idempotency: new MemoryIdempotencyStore(),
      jobs: records,
      cancelCheckMs: 100,
      onOutcome: recordOutcomes(records, events),
      // A retry would come at once: a cancelled job must not be retried at all.
      backoff: { baseMs: 10, maxMs: 10 },
      handlers: {
        test_job: {
          // Runs until its signal aborts, then fails with the abort's reason, as sharp and
          // nodemailer do when their signal aborts.
          handle: async (_payload: unknown, context: JobContext) => {
            started.push(context.envelope.id);
            const { signal } = context;
            await new Promise<void>((resolve) => {
              if (signal.aborted) resolve();
              else signal.addEventListener('abort', () => resolve(), { once: true });
            });
            reasons.push(signal.reason);
            throw signal.reason;
          },
        },
      },
    });
    await worker.ready;
    const running = job();
    records.add(running, queue);
    await h.broker.publish(queue, messages([running]));
    await eventually(
      () => records.getJob(running.id),
      (r) => r?.status === 'processing' && started.includes(running.id),
      'the job to run',
      h.timeoutMs,
    );
    const result = await cancelJobRecord(records, running.id);
    expect(result).toMatchObject({ outcome: 'cancelled', wasRunning: true });
    await eventually(
      async () => outcomesOf(events, running.id),
      (o) => o.includes('cancelled'),
      'the running job to end cancelled',
      h.timeoutMs,
    );
    await h.statsEventually(queue, EMPTY, 'nothing left: no retry, no dead letter');
    expect(started).toEqual([running.id]);
    expect(reasons).toHaveLength(1);
    expect((reasons[0] as Error).name).toBe('JobCancelledError');
    expect(outcomesOf(events, running.id)).toEqual(['processing', 'cancelled']);
    expect((await records.getJob(running.id))?.status).toBe('cancelled');
  },
};
