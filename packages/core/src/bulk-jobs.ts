/**
 * Bulk actions by filter (issue 17): retry or cancel every job a search matches, or redrive every
 * dead letter whose reason holds a text; each with a dry run that only counts. Shared by the API
 * (POST /v1/jobs/bulk, POST /v1/queues/:q/dead/redrive {match}) and the CLI (`polyqueue jobs`).
 *
 * One call acts on at most MAX_BULK_JOBS jobs or letters: a bigger set is `capped`, and the same
 * call again takes the next ones (the ones done no longer match a retry or cancel by status).
 */
import type { BrokerAdmin, DeadLetterStore } from './broker';
import { cancelJobRecord } from './cancellation';
import type { JobRecord, JobSearchFilter, JobStateStore } from './state';

/** What one bulk call acts on at most; documented in docs/admin-api.md. */
export const MAX_BULK_JOBS = 10_000;
/** Letters that may reach the dead letters while a bulk call lists them. */
const LIST_MARGIN = 100;
const PAGE = 200;
/** Ids per redrive call: one broker round trip each, a bounded message per call. */
const REDRIVE_CHUNK = 500;

export type BulkAction = 'retry' | 'cancel';

export interface BulkSkip {
  id: string;
  reason: string;
}

export interface BulkOutcome {
  /** Jobs the filter matched, at most the bound. */
  matched: number;
  /** More jobs match than one call takes. */
  capped: boolean;
  /** Jobs retried or cancelled. */
  done: number;
  /** The matched jobs left as they were, each with why. */
  skipped: BulkSkip[];
}

/** The jobs the filter matches, newest first, at most `bound`; `capped` when more match. */
export async function matchingJobs(
  state: Pick<JobStateStore, 'searchJobs'>,
  filter: JobSearchFilter,
  bound = MAX_BULK_JOBS,
): Promise<{ jobs: JobRecord[]; capped: boolean }> {
  const jobs: JobRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await state.searchJobs(filter, Math.min(PAGE, bound + 1 - jobs.length), cursor);
    jobs.push(...page.jobs);
    cursor = page.nextCursor;
  } while (cursor !== undefined && jobs.length <= bound);
  return { jobs: jobs.slice(0, bound), capped: jobs.length > bound };
}

/**
 * Retries each dead job as POST /v1/jobs/:id/retry does: its dead letter back to the queue, then
 * its record from dead to queued (compare-and-set). A job that is not dead, or whose letter is
 * gone, is skipped.
 */
export async function retryJobs(
  state: Pick<JobStateStore, 'updateJob'>,
  broker: Pick<BrokerAdmin, 'stats' | 'deadLetters'>,
  jobs: readonly JobRecord[],
): Promise<Omit<BulkOutcome, 'matched' | 'capped'>> {
  const skipped: BulkSkip[] = [];
  const byQueue = new Map<string, string[]>();
  for (const job of jobs) {
    if (job.status !== 'dead')
      skipped.push({ id: job.id, reason: `${job.status}: only a dead job is retried` });
    else byQueue.set(job.queue, [...(byQueue.get(job.queue) ?? []), job.id]);
  }
  let done = 0;
  for (const [queue, ids] of byQueue) {
    const store = broker.deadLetters(queue);
    const bound = (await broker.stats(queue)).dead + LIST_MARGIN;
    const present = new Set((await store.list(bound)).map((letter) => letter.id));
    const redrivable = ids.filter((id) => present.has(id));
    for (const id of ids)
      if (!present.has(id))
        skipped.push({ id, reason: `not in the dead letters of ${queue} (purged or redriven)` });
    // Redrive first: a record set back to queued with nothing queued would wait forever.
    for (let i = 0; i < redrivable.length; i += REDRIVE_CHUNK)
      await store.redrive(redrivable.slice(i, i + REDRIVE_CHUNK));
    for (const id of redrivable) {
      // A worker that already took the redriven job has moved the record on: still retried.
      await state.updateJob(id, { status: 'queued' }, 'dead');
      done += 1;
    }
  }
  return { done, skipped };
}

/** Cancels each job as DELETE /v1/jobs/:id does; finished ones are skipped. */
export async function cancelJobs(
  state: Pick<JobStateStore, 'getJob' | 'updateJob'>,
  jobs: readonly JobRecord[],
): Promise<Omit<BulkOutcome, 'matched' | 'capped'>> {
  const skipped: BulkSkip[] = [];
  let done = 0;
  for (const job of jobs) {
    const result = await cancelJobRecord(state, job.id);
    if (result.outcome === 'cancelled') done += 1;
    else if (result.outcome === 'finished')
      skipped.push({ id: job.id, reason: `${result.job.status}: already finished` });
    else if (result.outcome === 'unknown') skipped.push({ id: job.id, reason: 'the record is gone' });
    else skipped.push({ id: job.id, reason: 'kept changing status; cancel it again' });
  }
  return { done, skipped };
}

/** Search, then retry or cancel what matched (or only count it, with dryRun). */
export async function bulkJobAction(
  state: Pick<JobStateStore, 'searchJobs' | 'getJob' | 'updateJob'>,
  broker: Pick<BrokerAdmin, 'stats' | 'deadLetters'>,
  action: BulkAction,
  filter: JobSearchFilter,
  options: { dryRun?: boolean; bound?: number } = {},
): Promise<BulkOutcome> {
  const { jobs, capped } = await matchingJobs(state, filter, options.bound);
  if (options.dryRun) return { matched: jobs.length, capped, done: 0, skipped: [] };
  const outcome = action === 'retry' ? await retryJobs(state, broker, jobs) : await cancelJobs(state, jobs);
  return { matched: jobs.length, capped, ...outcome };
}

/**
 * The ids of the queue's dead letters whose reason contains `text` (case-sensitive), oldest
 * first, at most `bound`; `deadCount` is the queue's dead count from stats().
 */
export async function deadLettersMatching(
  store: Pick<DeadLetterStore, 'list'>,
  deadCount: number,
  text: string,
  bound = MAX_BULK_JOBS,
): Promise<{ ids: string[]; capped: boolean }> {
  const letters = await store.list(deadCount + LIST_MARGIN);
  const ids = letters.filter((letter) => letter.reason.includes(text)).map((letter) => letter.id);
  return { ids: ids.slice(0, bound), capped: ids.length > bound };
}
