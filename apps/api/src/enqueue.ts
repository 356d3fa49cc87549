import { createHash } from 'node:crypto';
import {
  type Broker,
  createEnvelope,
  errorMessage,
  type JobRecord,
  type JobStateStore,
  keptPayload,
  type Logger,
} from '@polyqueue/core';
import { type JobType, queueForJobType } from '@polyqueue/jobs';
import { assertBrokerCan, type RequestedFlow } from './flow-control';
import { problems } from './problem';

/** lastError of a job whose record was written but whose message the broker did not accept. */
const NOT_ENQUEUED = 'not enqueued: ';

export interface EnqueueDeps {
  /** name and capabilities: a delay or priority the broker cannot honour is refused up front. */
  broker: Pick<Broker, 'publish' | 'name' | 'capabilities'>;
  jobs: JobStateStore;
  newId: () => string;
  now: () => Date;
  logger: Logger;
}

export interface EnqueueRequest {
  type: JobType;
  /** The payload for the job id (an image's storage path contains it). */
  payloadFor(jobId: string): unknown;
  /**
   * Identifies the request's content: the same Idempotency-Key with another hash is a 409. Only
   * a request with an Idempotency-Key can meet an earlier record, so only it needs one.
   */
  requestHash?: string;
  idempotencyKey?: string;
  traceparent?: string;
  /** Runs once the record is written and before publishing (the image upload moves into place). */
  beforePublish?(jobId: string): Promise<void>;
  /**
   * Delay and priority, passed to Broker.publish and checked against the broker's capabilities
   * first; the limit key goes on the envelope (per-key concurrency limits count by it).
   */
  flow?: RequestedFlow;
}

export interface EnqueueResult {
  job: JobRecord;
  /** True when an earlier request with the same Idempotency-Key created the job. */
  replayed: boolean;
}

/**
 * Records the job as `pending`, publishes its envelope, then marks it `queued` (a new job's
 * answer does not wait for that last commit; see markQueued). With an
 * Idempotency-Key the record is created atomically on the key (JobStateStore.createJob), so
 * of two identical requests one creates the job and the other gets that same job.
 *
 * A replay answers from the record only once the record shows the publication confirmed
 * (`queued` or later). A record still `pending` (the API died before the broker confirmed, the
 * broker refused it, or the first request is still publishing) is published again under the
 * same job id: a second copy of one job id is harmless, as the worker's idempotency claim on
 * the id runs it once, while answering "replayed" for a job that never reached the broker would
 * lose it.
 */
export async function enqueueJob(deps: EnqueueDeps, request: EnqueueRequest): Promise<EnqueueResult> {
  // Before the record: a refused job leaves nothing behind.
  if (request.flow) assertBrokerCan(deps.broker, request.flow);
  const queue = queueForJobType[request.type];
  const at = deps.now().toISOString();
  const recordId = deps.newId();
  const record: JobRecord = {
    id: recordId,
    type: request.type,
    queue,
    status: 'pending',
    attempts: 0,
    createdAt: at,
    updatedAt: at,
    // What the dashboard's job page shows (up to PAYLOAD_KEPT_BYTES of JSON; larger: only a mark).
    ...keptPayload(request.payloadFor(recordId)),
  };
  if (request.requestHash !== undefined) record.requestHash = request.requestHash;
  if (request.idempotencyKey !== undefined) record.idempotencyKey = request.idempotencyKey;

  const created = await deps.jobs.createJob(record);
  let job = record;
  if (!created.created) {
    const existing = created.existing;
    if (existing.requestHash !== request.requestHash) {
      throw problems.idempotencyConflict(request.idempotencyKey ?? '', existing.id);
    }
    if (existing.status !== 'pending') return { job: existing, replayed: true };
    job = existing;
  }

  try {
    await request.beforePublish?.(job.id);
    const { key, ...publishFlow } = request.flow ?? {};
    const envelope = createEnvelope(request.type, request.payloadFor(job.id), {
      id: job.id,
      ...(request.traceparent ? { traceparent: request.traceparent } : {}),
      ...(key !== undefined ? { key } : {}),
    });
    await deps.broker.publish(queue, [{ envelope, ...publishFlow }]);
  } catch (error) {
    const reason = `${NOT_ENQUEUED}${errorMessage(error)}`;
    deps.logger.error({ err: error, jobId: job.id, queue }, 'could not enqueue job');
    await deps.jobs.updateJob(job.id, { lastError: reason }, 'pending').catch(() => {});
    throw problems.unavailable(
      `the job ${job.id} could not be queued (${errorMessage(error)}); retry the request with the same Idempotency-Key`,
    );
  }
  // A new job answers without waiting for `queued` to commit: the job and its `pending` record
  // are durable, which is what the 202 promises, and the mark joins the store's next commit
  // instead of adding a third commit to every request's wait. A replay reads the record back.
  if (created.created) {
    void markQueued(deps, job);
    return { job: { ...job, status: 'queued' }, replayed: false };
  }
  return { job: await markQueued(deps, job), replayed: true };
}

/**
 * The broker has the job: from now on a replay answers from the record. Only a `pending` record
 * moves, as a fast worker may have written `processing` or `succeeded` already. If the store
 * fails here the job is still queued and the answer is still 202: the record stays `pending`
 * (as it may for the moment before this commits, or after a crash in that moment), and a
 * retried request publishes the job id once more, which the worker runs once; the worker's
 * `processing` mark moves a `pending` record too (job-recorder.ts). Never rejects.
 */
async function markQueued(deps: EnqueueDeps, job: JobRecord): Promise<JobRecord> {
  const queued: JobRecord = { ...job, status: 'queued', lastError: '' };
  try {
    if (await deps.jobs.updateJob(job.id, { status: 'queued', lastError: '' }, 'pending')) return queued;
    return (await deps.jobs.getJob(job.id)) ?? queued;
  } catch (error) {
    deps.logger.warn({ err: error, jobId: job.id }, 'job queued, but its record still says pending');
    return queued;
  }
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
