import {
  type BrokerEvents,
  createEnvelope,
  type HookAnswer,
  type JobPatch,
  type JobStateStore,
  type JobStatus,
  type Logger,
  type OutcomeEvent,
  silentLogger,
} from '@polyqueue/core';
import type { OutcomeObserver } from './outcome-history';

/** The pub/sub topic of job lifecycle events. */
export const JOB_EVENTS_TOPIC = 'job-events';

/** The payload of a job.succeeded / job.retrying / job.dead / job.cancelled event on JOB_EVENTS_TOPIC. */
export interface JobLifecycleEvent {
  jobId: string;
  type: string;
  queue: string;
  attempt: number;
  result?: unknown;
  error?: string;
  /** job.retrying only: when the next attempt may run. */
  retryInMs?: number;
}

export interface JobRecorderOptions {
  state: JobStateStore;
  broker: Pick<BrokerEvents, 'publishEvent'>;
  logger?: Logger;
  topic?: string;
  /** Counts each outcome for the dashboard's charts (startOutcomeHistory); never throws. */
  history?: OutcomeObserver;
}

/**
 * The worker runtime's onOutcome hook: writes each state change to the job's status record
 * (what GET /v1/jobs/:id reports) and publishes job.succeeded, job.retrying (a failed attempt
 * whose next attempt is scheduled), job.dead (failed for good) and job.cancelled on the
 * job-events topic.
 *
 * Status mapping: processing -> processing; succeeded -> succeeded with the result;
 * retrying -> retrying with lastError; dead -> dead with the reason; a redelivered job found
 * already done -> succeeded (the first run's ack or record may have been lost, which would
 * otherwise leave it `processing` for good); cancelled -> cancelled. `processing` is written by
 * compare-and-set (markProcessing), never over a `cancelled` record: for such a job the hook
 * answers 'cancelled' and the runtime acks it unrun. The record and the event are written
 * independently, so an outage of one does not lose the other; the runtime logs what this throws.
 */
export function createJobRecorder(options: JobRecorderOptions): (event: OutcomeEvent) => Promise<HookAnswer> {
  const { state, broker, topic = JOB_EVENTS_TOPIC, logger = silentLogger() } = options;

  return async function recordOutcome(event) {
    options.history?.observe(event);
    const jobId = event.envelope?.id ?? event.messageId;
    if (event.outcome === 'processing' && event.envelope) return markProcessing(state, jobId, event.attempt);
    const type = event.envelope?.type ?? 'unknown';
    const patch = patchFor(event);
    const eventName = eventNameFor(event);

    const writes: Promise<unknown>[] = [];
    // A body that was not an envelope has no job record to update.
    if (event.envelope) writes.push(state.updateJob(jobId, patch));
    if (eventName) {
      const payload: JobLifecycleEvent = { jobId, type, queue: event.queue, attempt: event.attempt };
      if (event.result !== undefined) payload.result = event.result;
      if (event.error !== undefined) payload.error = event.error;
      if (event.retryInMs !== undefined) payload.retryInMs = event.retryInMs;
      // A deterministic id lets a subscriber drop the duplicate an at-least-once broker may bring.
      const envelope = createEnvelope(eventName, payload, { id: `${jobId}:${eventName}:${event.attempt}` });
      writes.push(broker.publishEvent(topic, envelope));
    }
    const results = await Promise.allSettled(writes);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const failure of failures)
      logger.warn({ err: failure.reason, jobId, outcome: event.outcome }, 'could not record outcome');
    if (failures.length > 0) throw failures[0]!.reason;
  };
}

function patchFor(event: OutcomeEvent): JobPatch {
  switch (event.outcome) {
    case 'processing':
      return { status: 'processing', attempts: event.attempt };
    case 'succeeded':
      return { status: 'succeeded', attempts: event.attempt, result: event.result ?? null };
    case 'retrying':
      return { status: 'retrying', attempts: event.attempt, lastError: event.error ?? 'failed' };
    case 'dead':
      return { status: 'dead', attempts: event.attempt, lastError: event.error ?? 'dead-lettered' };
    case 'skipped_duplicate':
      return event.result === undefined || event.result === null
        ? { status: 'succeeded' }
        : { status: 'succeeded', result: event.result };
    case 'cancelled':
      return { status: 'cancelled' };
  }
}

/**
 * Writes `processing` unless the record says `cancelled` (then answers 'cancelled'). A
 * compare-and-set from the status the job most likely has (queued on a first attempt, retrying
 * after), so the common case is the one write it always was; on a miss the record is read and
 * the write retried from what it holds. A cancel landing between the read and the write makes
 * that write miss again, and is then seen. A job with no record (another producer's) is left so.
 */
async function markProcessing(state: JobStateStore, id: string, attempt: number): Promise<HookAnswer> {
  const patch: JobPatch = { status: 'processing', attempts: attempt };
  let expected: JobStatus = attempt > 1 ? 'retrying' : 'queued';
  for (let tries = 0; tries < 4; tries++) {
    if (await state.updateJob(id, patch, expected)) return;
    const record = await state.getJob(id);
    if (!record) return;
    if (record.status === 'cancelled') return 'cancelled';
    expected = record.status;
  }
  throw new Error(`job ${id}: its record kept changing; not marked processing`);
}

function eventNameFor(event: OutcomeEvent): string | undefined {
  switch (event.outcome) {
    case 'succeeded':
      return 'job.succeeded';
    case 'retrying':
      return 'job.retrying';
    case 'dead':
      return 'job.dead';
    case 'cancelled':
      return 'job.cancelled';
    default:
      return undefined;
  }
}
