import type { JobRecord, JobStatus } from '@polyqueue/core';
import { type ApiContext, findJob } from './context';
import { HttpProblem } from './problem';

/** A job in one of these has ended: cancelling it is a 409. */
const FINISHED: readonly JobStatus[] = ['succeeded', 'dead', 'cancelled'];

/**
 * DELETE /v1/jobs/:id: marks a job that has not finished `cancelled`. Each write is a
 * compare-and-set from the status just read, so a worker finishing meanwhile wins (the record
 * then says succeeded or dead, and the answer is the 409 it would have been), and a job moving
 * on (queued -> processing) is read again and cancelled from there. A pending, queued, retrying
 * or delayed job is then acked unrun by the worker that receives it; a processing one has its
 * handler's signal aborted by its worker within about a second (wasRunning).
 */
export async function cancelJob(
  ctx: ApiContext,
  id: string,
): Promise<{ job: JobRecord; wasRunning: boolean }> {
  for (let tries = 0; tries < 5; tries++) {
    const job = await findJob(ctx, id);
    if (FINISHED.includes(job.status)) {
      throw new HttpProblem(
        409,
        'job-finished',
        `job ${job.id} has already finished (status ${job.status}); there is nothing to cancel`,
        {
          jobId: job.id,
          jobStatus: job.status,
        },
      );
    }
    if (await ctx.state.updateJob(job.id, { status: 'cancelled' }, job.status)) {
      const cancelled = (await ctx.state.getJob(job.id)) ?? { ...job, status: 'cancelled' as const };
      return { job: cancelled, wasRunning: job.status === 'processing' };
    }
  }
  throw new HttpProblem(503, 'service-unavailable', `job ${id} kept changing status; retry the cancel`, {
    headers: { 'Retry-After': '1' },
  });
}
