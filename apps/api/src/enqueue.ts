import { createHash } from 'node:crypto';
import {
  type Broker,
  createEnvelope,
  errorMessage,
  type JobRecord,
  type JobStateStore,
  type JobType,
  type Logger,
  queueForJobType,
} from '@polyqueue/core';
import { problems } from './problem';

/** lastError of a job whose record was written but whose message the broker did not accept. */
const NOT_ENQUEUED = 'not enqueued: ';

export interface EnqueueDeps {
  broker: Pick<Broker, 'publish'>;
  jobs: JobStateStore;
  newId: () => string;
  now: () => Date;
  logger: Logger;
}

export interface EnqueueRequest {
  type: JobType;
  /** The payload for the job id (an image's storage path contains it). */
  payloadFor(jobId: string): unknown;
  /** Identifies the request's content: the same Idempotency-Key with another hash is a 409. */
  requestHash: string;
  idempotencyKey?: string;
  traceparent?: string;
  /** Runs once the record is written and before publishing (the image upload moves into place). */
  beforePublish?(jobId: string): Promise<void>;
}

export interface EnqueueResult {
  job: JobRecord;
  /** True when an earlier request with the same Idempotency-Key created the job. */
  replayed: boolean;
}

/**
 * Records the job as queued, then publishes its envelope. With an Idempotency-Key the record
 * is created atomically on the key (JobStateStore.createJob), so of two identical requests one
 * creates and publishes, the other gets the same job and publishes nothing.
 *
 * When the broker refuses the message the record is marked failed (attempts 0, "not enqueued")
 * and the client gets a 503; a retry with the same key publishes that same job id again, and
 * the worker's idempotency on the job id keeps it to one run.
 */
export async function enqueueJob(deps: EnqueueDeps, request: EnqueueRequest): Promise<EnqueueResult> {
  const queue = queueForJobType[request.type];
  const at = deps.now().toISOString();
  const record: JobRecord = {
    id: deps.newId(),
    type: request.type,
    queue,
    status: 'queued',
    attempts: 0,
    createdAt: at,
    updatedAt: at,
    requestHash: request.requestHash,
  };
  if (request.idempotencyKey !== undefined) record.idempotencyKey = request.idempotencyKey;

  const created = await deps.jobs.createJob(record);
  let job = record;
  if (!created.created) {
    const existing = created.existing;
    if (existing.requestHash !== request.requestHash) {
      throw problems.idempotencyConflict(request.idempotencyKey ?? '', existing.id);
    }
    const enqueueFailed =
      existing.status === 'failed' && existing.attempts === 0 && existing.lastError?.startsWith(NOT_ENQUEUED);
    if (!enqueueFailed) return { job: existing, replayed: true };
    job = existing;
  }

  try {
    await request.beforePublish?.(job.id);
    const envelope = createEnvelope(request.type, request.payloadFor(job.id), {
      id: job.id,
      ...(request.traceparent ? { traceparent: request.traceparent } : {}),
    });
    await deps.broker.publish(queue, [{ envelope }]);
  } catch (error) {
    const reason = `${NOT_ENQUEUED}${errorMessage(error)}`;
    deps.logger.error({ err: error, jobId: job.id, queue }, 'could not enqueue job');
    await deps.jobs.updateJob(job.id, { status: 'failed', lastError: reason }).catch(() => {});
    throw problems.unavailable(
      `the job ${job.id} could not be queued (${errorMessage(error)}); retry the request with the same Idempotency-Key`,
    );
  }
  if (!created.created) {
    await deps.jobs.updateJob(job.id, { status: 'queued', lastError: '' });
    job = { ...job, status: 'queued', lastError: '' };
  }
  return { job, replayed: !created.created };
}

/** A content hash of a JSON request: key order does not matter, values do. */
export function hashJson(type: string, value: unknown): string {
  return createHash('sha256').update(type).update('\n').update(stableStringify(value)).digest('hex');
}

export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
