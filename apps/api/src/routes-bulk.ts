import { type BrokerAdmin, bulkJobAction, type JobStateStore, MAX_BULK_JOBS } from '@polyqueue/core';
import { Router } from 'express';
import { z } from 'zod';
import { bearerAuth } from './http';
import { jsonBody } from './json-body';
import { fieldErrors, HttpProblem, problems } from './problem';

export interface BulkRoutesDeps {
  broker: { name: string } & Partial<Pick<BrokerAdmin, 'stats' | 'deadLetters'>>;
  state: Pick<JobStateStore, 'searchJobs' | 'getJob' | 'updateJob'>;
  apiToken?: string | undefined;
  jsonBytes: number;
}

const STATUSES = ['pending', 'queued', 'processing', 'retrying', 'succeeded', 'dead', 'cancelled'] as const;

/** What GET /v1/jobs filters by; at least one field, so no call acts on every job by accident. */
const filterSchema = z
  .strictObject({
    status: z.enum(STATUSES).optional(),
    type: z.string().min(1).max(100).optional(),
    queue: z.string().min(1).max(200).optional(),
    q: z.string().min(1).max(500).optional(),
  })
  .refine(
    (f) => Object.values(f).some((v) => v !== undefined),
    'name at least one of status, type, queue, q',
  );

const bulkSchema = z.strictObject({
  action: z.enum(['retry', 'cancel']),
  filter: filterSchema,
  dryRun: z.boolean().optional(),
  /** At most this many jobs (default and ceiling MAX_BULK_JOBS). */
  limit: z.number().int().min(1).max(MAX_BULK_JOBS).optional(),
});

/**
 * POST /v1/jobs/bulk {action: 'retry' | 'cancel', filter: {status?, type?, queue?, q?}, dryRun?,
 * limit?}: the jobs GET /v1/jobs would list for that filter (newest first, at most 10,000 a
 * call), retried as POST /v1/jobs/:id/retry or cancelled as DELETE /v1/jobs/:id. A dry run only
 * counts: {action, dryRun: true, matched, capped}. Otherwise {action, matched, capped, done,
 * skipped: [{id, reason}]}; `capped` says more matched than one call takes.
 */
export function bulkRoutes(deps: BulkRoutesDeps): Router {
  const router = Router();
  router.post('/v1/jobs/bulk', bearerAuth(deps.apiToken), jsonBody(deps.jsonBytes), async (req, res) => {
    const parsed = bulkSchema.safeParse(req.body);
    if (!parsed.success)
      throw problems.validation(
        fieldErrors(parsed.error),
        "expected {action: 'retry' | 'cancel', filter: {status?, type?, queue?, q?}, dryRun?}",
      );
    const { action, filter, dryRun = false, limit } = parsed.data;
    const { broker } = deps;
    if (
      action === 'retry' &&
      (typeof broker.stats !== 'function' || typeof broker.deadLetters !== 'function')
    )
      throw new HttpProblem(
        501,
        'not-implemented',
        `the broker ${broker.name} does not implement BrokerAdmin (stats, dead letters)`,
        { broker: broker.name },
      );
    const outcome = await bulkJobAction(
      deps.state,
      broker as Pick<BrokerAdmin, 'stats' | 'deadLetters'>,
      action,
      filter,
      {
        dryRun,
        ...(limit === undefined ? {} : { bound: limit }),
      },
    );
    if (dryRun) return void res.json({ action, dryRun, matched: outcome.matched, capped: outcome.capped });
    res.json({ action, ...outcome });
  });
  return router;
}
