import { cancelJobRecord, type JobRecord } from '@polyqueue/core';
import { type ApiContext, findJob } from './context';
import { HttpProblem, problems } from './problem';

/**
 * DELETE /v1/jobs/:id through cancelJobRecord (a compare-and-set from the status read, so a
 * worker finishing meanwhile wins): 404 for an unknown id, 409 for a finished job (succeeded,
 * dead or cancelled), else the cancelled record; wasRunning for a job that was processing, whose
 * worker aborts the handler within about a second.
 */
export async function cancelJob(
  ctx: ApiContext,
  id: string,
): Promise<{ job: JobRecord; wasRunning: boolean }> {
  await findJob(ctx, id); // the id's shape and a clear 404
  const result = await cancelJobRecord(ctx.state, id);
  switch (result.outcome) {
    case 'cancelled':
      return { job: result.job, wasRunning: result.wasRunning };
    case 'unknown':
      throw problems.notFound(`no job ${JSON.stringify(id)}`);
    case 'finished':
      throw new HttpProblem(
        409,
        'job-finished',
        `job ${id} has already finished (status ${result.job.status}); there is nothing to cancel`,
        { jobId: id, jobStatus: result.job.status },
      );
    case 'contended':
      throw new HttpProblem(503, 'service-unavailable', `job ${id} kept changing status; retry the cancel`, {
        headers: { 'Retry-After': '1' },
      });
  }
}
