import { errorMessage, type QueueControls, registerQueuePausedGauge } from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import { Router } from 'express';
import type { Registry } from 'prom-client';
import { bearerAuth } from './http';
import { problems } from './problem';

export interface QueueRoutesDeps {
  /** The cluster-wide pause flags (the runtime's, from STATE_URL); without them no route is served. */
  controls: QueueControls | undefined;
  apiToken: string | undefined;
  registry: Registry;
}

/**
 * POST /v1/queues/:queue/pause and /resume: every worker of the queue stops fetching within
 * its next poll of the flags (about half a second; the jobs in flight finish), or fetches
 * again. Both answer 200 with the queue's new state and whether this call changed it, so a
 * repeat is harmless. An unknown queue is a 404 naming the known ones. The API's /metrics
 * shows polyqueue_queue_paused{queue} for every queue. A state store that does not answer is a
 * 503 (Retry-After).
 */
export function queueRoutes(deps: QueueRoutesDeps): Router {
  const router = Router();
  const { controls } = deps;
  if (!controls) return router;
  registerQueuePausedGauge(deps.registry, controls, jobQueues);
  const auth = bearerAuth(deps.apiToken);

  for (const action of ['pause', 'resume'] as const) {
    router.post(`/v1/queues/:queue/${action}`, auth, async (req, res) => {
      const queue = req.params.queue as string;
      if (!(jobQueues as readonly string[]).includes(queue))
        throw problems.notFound(`no queue ${JSON.stringify(queue)}; the queues are ${jobQueues.join(', ')}`);
      let changed: boolean;
      try {
        changed = action === 'pause' ? await controls.pause(queue) : await controls.resume(queue);
      } catch (error) {
        // The write may or may not have landed; a repeat is harmless either way.
        throw problems.unavailable(
          `could not ${action} queue ${queue}: the state store did not answer (${errorMessage(error)}); try again`,
        );
      }
      res.set('Cache-Control', 'no-store').json({ queue, paused: action === 'pause', changed });
    });
  }
  return router;
}
