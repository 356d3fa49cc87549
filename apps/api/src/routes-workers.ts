import type { WorkerRegistry } from '@polyqueue/core';
import { Router } from 'express';
import { bearerAuth } from './http';
import { HttpProblem } from './problem';

export interface WorkerRoutesDeps {
  /** The worker heartbeats (STATE_URL's backend); without them GET /v1/workers answers 501. */
  workers?: WorkerRegistry | undefined;
  apiToken?: string | undefined;
}

/**
 * GET /v1/workers: the worker processes whose heartbeat (every 5 s) is younger than 15 s, by
 * queue: id, queue, host, pid, concurrency, inFlight, version, startedAt, lastHeartbeat. The
 * dashboard's Workers page, and the overview's warning for a queue with ready jobs and none.
 */
export function workerRoutes(deps: WorkerRoutesDeps): Router {
  const router = Router();
  router.get('/v1/workers', bearerAuth(deps.apiToken), async (_req, res) => {
    if (!deps.workers)
      throw new HttpProblem(501, 'not-implemented', 'this API has no worker registry (STATE_URL)');
    res.set('Cache-Control', 'no-store').json(await deps.workers.live());
  });
  return router;
}
