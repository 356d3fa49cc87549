import type { JobStateStore } from '@polyqueue/core';
import { Router } from 'express';
import { z } from 'zod';
import { bearerAuth } from './http';
import { fieldErrors, problems } from './problem';

export interface JobSearchRoutesDeps {
  state: Pick<JobStateStore, 'searchJobs'>;
  apiToken?: string | undefined;
}

const STATUSES = ['pending', 'queued', 'processing', 'retrying', 'succeeded', 'dead', 'cancelled'] as const;

/** Empty fields are absent: the dashboard's form sends every field, filled or not. */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

const querySchema = z.object({
  status: optional(z.enum(STATUSES)),
  type: optional(z.string().max(100)),
  queue: optional(z.string().max(200)),
  q: optional(z.string().max(500)),
  cursor: optional(z.string().max(1000)),
  limit: optional(z.coerce.number().int().min(1).max(200)),
});

const DEFAULT_LIMIT = 50;

/**
 * GET /v1/jobs?status=&type=&queue=&q=&cursor=&limit= : the job records that match, newest first
 * (the dashboard's Jobs page, issue 17). `q` is a job id or an Idempotency-Key (whole) or a part
 * of the last error. `nextCursor` fetches the next page. Behind the bearer token: records hold
 * results and error texts.
 */
export function jobSearchRoutes(deps: JobSearchRoutesDeps): Router {
  const router = Router();
  router.get('/v1/jobs', bearerAuth(deps.apiToken), async (req, res) => {
    const { state } = deps;
    const parsed = querySchema.safeParse(req.query);
    if (!parsed.success) throw problems.validation(fieldErrors(parsed.error), 'invalid query');
    const { cursor, limit = DEFAULT_LIMIT, ...filter } = parsed.data;
    let page: Awaited<ReturnType<JobStateStore['searchJobs']>>;
    try {
      page = await state.searchJobs(filter, limit, cursor);
    } catch (error) {
      if (!(error instanceof TypeError) || cursor === undefined) throw error;
      throw problems.validation([{ field: 'cursor', message: error.message }], 'invalid query');
    }
    // Payloads (up to 16 KiB each) stay on the job's own page: a page of 50 would carry 800 KiB.
    // The stores leave them out (searchJobs); dropped here too for a store that would not.
    const jobs = page.jobs.map(({ payload: _payload, payloadTruncated: _truncated, ...job }) => job);
    res.set('Cache-Control', 'no-store').json({ ...page, jobs });
  });
  return router;
}
