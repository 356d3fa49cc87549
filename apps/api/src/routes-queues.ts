import {
  errorMessage,
  invalidLimits,
  type Limits,
  type QueueControls,
  type QueueLimits,
  registerQueueLimitGauges,
  registerQueuePausedGauge,
} from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import { Router } from 'express';
import type { Registry } from 'prom-client';
import { bearerAuth } from './http';
import { jsonBody } from './json-body';
import { HttpProblem, problems } from './problem';

export interface QueueRoutesDeps {
  /** The cluster-wide pause flags (the runtime's, from STATE_URL); without them no route is served. */
  controls: QueueControls | undefined;
  /** The cluster-wide rate and concurrency limits; without them no limits route is served. */
  queueLimits?: QueueLimits | undefined;
  apiToken: string | undefined;
  registry: Registry;
  /** The largest JSON body PUT /v1/queues/:q/limits reads. */
  jsonBytes: number;
}

/** A queue's limits as the API shows them: every field, null where there is no limit. */
export function limitsView(limits: Limits | undefined): Record<keyof Limits, number | null> {
  return {
    ratePerSec: limits?.ratePerSec ?? null,
    concurrency: limits?.concurrency ?? null,
    perKeyConcurrency: limits?.perKeyConcurrency ?? null,
  };
}

const LIMIT_FIELDS = ['ratePerSec', 'concurrency', 'perKeyConcurrency'] as const;

/** The body of PUT /v1/queues/:q/limits as Limits (null and absent: no limit), or a 400. */
function limitsFromBody(body: unknown): Limits {
  const invalid = (detail: string) => new HttpProblem(400, 'invalid-limits', detail);
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid('send a JSON object such as {"ratePerSec": 10, "concurrency": 5, "perKeyConcurrency": 1}');
  const unknown = Object.keys(body).filter((key) => !(LIMIT_FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0)
    throw invalid(`unknown field ${unknown.join(', ')}; the limits are ${LIMIT_FIELDS.join(', ')}`);
  const limits: Record<string, unknown> = {};
  for (const field of LIMIT_FIELDS) {
    const value = (body as Record<string, unknown>)[field];
    if (value !== undefined && value !== null) limits[field] = value;
  }
  const reason = invalidLimits(limits);
  if (reason) throw invalid(`${reason}; null or absent means no limit`);
  return limits as Limits;
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
  const auth = bearerAuth(deps.apiToken);
  if (deps.queueLimits) limitRoutes(router, deps.queueLimits, deps, auth);
  const { controls } = deps;
  if (!controls) return router;
  registerQueuePausedGauge(deps.registry, controls, jobQueues);

  for (const action of ['pause', 'resume'] as const) {
    router.post(`/v1/queues/:queue/${action}`, auth, async (req, res) => {
      const queue = knownQueue(req.params.queue as string);
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

/** The queue name, or the 404 naming the known ones. */
function knownQueue(queue: string): string {
  if (!(jobQueues as readonly string[]).includes(queue))
    throw problems.notFound(`no queue ${JSON.stringify(queue)}; the queues are ${jobQueues.join(', ')}`);
  return queue;
}

/**
 * GET and PUT /v1/queues/:queue/limits: the queue's cluster-wide limits, which every worker
 * obeys from its next read of them (about half a second). PUT replaces all three: a field that
 * is null or absent has no limit, so `{}` clears them. The API's /metrics shows
 * polyqueue_queue_rate_limit and polyqueue_queue_concurrency_limit for every limited queue.
 */
function limitRoutes(
  router: Router,
  store: QueueLimits,
  deps: QueueRoutesDeps,
  auth: ReturnType<typeof bearerAuth>,
): void {
  registerQueueLimitGauges(deps.registry, store, jobQueues);
  const unavailable = (queue: string, error: unknown) =>
    problems.unavailable(
      `could not reach the limits of queue ${queue}: the state store did not answer (${errorMessage(error)}); try again`,
    );

  router.get('/v1/queues/:queue/limits', auth, async (req, res) => {
    const queue = knownQueue(req.params.queue as string);
    let limits: Limits | undefined;
    try {
      limits = (await store.limits()).get(queue);
    } catch (error) {
      throw unavailable(queue, error);
    }
    res.set('Cache-Control', 'no-store').json({ queue, limits: limitsView(limits) });
  });

  router.put('/v1/queues/:queue/limits', auth, jsonBody(deps.jsonBytes), async (req, res) => {
    const queue = knownQueue(req.params.queue as string);
    const limits = limitsFromBody(req.body);
    try {
      await store.setLimits(queue, limits);
    } catch (error) {
      // The write may or may not have landed; a repeat of a PUT is harmless either way.
      throw unavailable(queue, error);
    }
    res.set('Cache-Control', 'no-store').json({ queue, limits: limitsView(limits) });
  });
}
