import {
  type BrokerEvents,
  createEnvelope,
  type JobPatch,
  type JobStateStore,
  type Logger,
  type OutcomeEvent,
  silentLogger,
} from '@polyqueue/core';

/** The pub/sub topic of job lifecycle events. */
export const JOB_EVENTS_TOPIC = 'job-events';

/** The payload of a job.succeeded / job.retrying / job.dead event on JOB_EVENTS_TOPIC. */
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
}

/**
 * The worker runtime's onOutcome hook: writes each state change to the job's status record
 * (what GET /v1/jobs/:id reports) and publishes job.succeeded, job.retrying (a failed attempt
 * whose next attempt is scheduled) and job.dead (failed for good) on the job-events topic.
 *
 * Status mapping: processing -> processing; succeeded -> succeeded with the result;
 * retrying -> retrying with lastError; dead -> dead with the reason; a redelivered job found
 * already done -> succeeded (the first run's ack or record may have been lost, which would
 * otherwise leave it `processing` for good). The record and the event are written
 * independently, so an outage of one does not lose the other; the runtime logs what this throws.
 */
export function createJobRecorder(options: JobRecorderOptions): (event: OutcomeEvent) => Promise<void> {
  const { state, broker, topic = JOB_EVENTS_TOPIC, logger = silentLogger() } = options;

  return async function recordOutcome(event) {
    const jobId = event.envelope?.id ?? event.messageId;
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
  }
}

function eventNameFor(event: OutcomeEvent): string | undefined {
  switch (event.outcome) {
    case 'succeeded':
      return 'job.succeeded';
    case 'retrying':
      return 'job.retrying';
    case 'dead':
      return 'job.dead';
    default:
      return undefined;
  }
}
