import type { Logger } from 'pino';
import type { Delivery } from './broker';
import { JobCancelledError } from './errors';
import type { JobRecord, JobStateStore, JobStatus } from './state';

/** A job whose handler runs now: what the heartbeat renews and the cancel watch reads. */
export interface RunningJob {
  delivery: Delivery;
  jobId: string;
  key: string;
  owner: string;
  /** Date.now() of the claim or of the last renewal. */
  renewedAt: number;
  /** Its record said `cancelled` while it ran: it ends cancelled, whatever the handler does. */
  cancelled?: boolean;
  /** Made when the handler first reads context.signal: most handlers never do. */
  abort?: AbortController;
}

/**
 * The job's signal: aborted by the worker's hard stop (the drain timeout) or by a cancel. One
 * controller per job, made on first read, which the worker aborts itself on a hard stop
 * (AbortSignal.any would tie every job's signal to the long-lived hard-stop signal).
 */
export function jobSignal(job: RunningJob, hardStop: AbortSignal): AbortSignal {
  if (!job.abort) {
    job.abort = new AbortController();
    if (job.cancelled) job.abort.abort(new JobCancelledError(job.jobId));
    else if (hardStop.aborted) job.abort.abort(hardStop.reason);
  }
  return job.abort.signal;
}

export function cancelRunning(job: RunningJob): void {
  if (job.cancelled) return;
  job.cancelled = true;
  job.abort?.abort(new JobCancelledError(job.jobId));
}

/** Whether the job's record says cancelled; false without records or when they cannot be read. */
export async function isCancelled(
  jobs: Pick<JobStateStore, 'getJob'> | undefined,
  jobId: string,
  logger: Logger,
): Promise<boolean> {
  if (!jobs) return false;
  try {
    return (await jobs.getJob(jobId))?.status === 'cancelled';
  } catch (error) {
    logger.warn({ err: error, jobId }, 'could not read the job record for a cancel');
    return false;
  }
}

/** How often a worker reads its running jobs' records for a cancel: "within about a second". */
export const DEFAULT_CANCEL_CHECK_MS = 1_000;

/**
 * Every everyMs, reads the record of each running job and cancels those whose record says
 * `cancelled` (DELETE /v1/jobs/:id on a processing job). The reads of one tick run together and
 * a tick is skipped while the last one is still reading, so a slow store is read no faster than
 * it answers. Returns the stop function.
 */
export function watchCancels(
  running: ReadonlySet<RunningJob>,
  jobs: Pick<JobStateStore, 'getJob'>,
  everyMs: number,
  logger: Logger,
): () => void {
  let reading = false;
  const tick = async () => {
    if (reading || running.size === 0) return;
    reading = true;
    try {
      const watched = [...running].filter((job) => !job.cancelled);
      const records = await Promise.all(watched.map((job) => jobs.getJob(job.jobId)));
      records.forEach((record, i) => {
        if (record?.status !== 'cancelled') return;
        const job = watched[i]!;
        logger.info({ jobId: job.jobId }, 'job cancelled while running; aborting its signal');
        cancelRunning(job);
      });
    } catch (error) {
      logger.warn({ err: error }, 'could not read running jobs for a cancel');
    } finally {
      reading = false;
    }
  };
  const timer = setInterval(() => void tick(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** A job in one of these has ended: there is nothing to cancel. */
export const FINISHED_STATUSES: readonly JobStatus[] = ['succeeded', 'dead', 'cancelled'];

export type CancelResult =
  | { outcome: 'cancelled'; job: JobRecord; wasRunning: boolean }
  | { outcome: 'finished'; job: JobRecord }
  | { outcome: 'unknown' }
  | { outcome: 'contended' };

/**
 * Marks a job that has not finished `cancelled` (DELETE /v1/jobs/:id, `polyqueue cancel`). Each
 * write is a compare-and-set from the status just read, so a worker finishing meanwhile wins
 * (the record then says succeeded or dead: 'finished'), and a job moving on (queued ->
 * processing) is read again and cancelled from there. A pending, queued, retrying or delayed job
 * is then acked unrun by the worker that receives it; a running one (wasRunning) has its
 * handler's signal aborted by its worker within about a second (watchCancels).
 */
export async function cancelJobRecord(
  jobs: Pick<JobStateStore, 'getJob' | 'updateJob'>,
  id: string,
): Promise<CancelResult> {
  for (let tries = 0; tries < 5; tries++) {
    const job = await jobs.getJob(id);
    if (!job) return { outcome: 'unknown' };
    if (FINISHED_STATUSES.includes(job.status)) return { outcome: 'finished', job };
    if (await jobs.updateJob(id, { status: 'cancelled' }, job.status)) {
      const cancelled = (await jobs.getJob(id)) ?? { ...job, status: 'cancelled' as const };
      return { outcome: 'cancelled', job: cancelled, wasRunning: job.status === 'processing' };
    }
  }
  return { outcome: 'contended' };
}
