import {
  type Broker,
  type BrokerAdmin,
  type DeadLetterStore,
  deadLettersMatching,
  describeDeadLetter,
  errorMessage,
  type JobStateStore,
  missingDeadLetters,
  type QueueControls,
  type QueueLimits,
} from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import { type Request, Router } from 'express';
import { z } from 'zod';
import { JOB_ID_PATTERN } from './context';
import { bearerAuth } from './http';
import { jsonBody } from './json-body';
import { fieldErrors, HttpProblem, problems } from './problem';
import { limitsView } from './routes-queues';

export interface AdminRoutesDeps {
  /** Stats and dead letters come from its BrokerAdmin part; a broker without it answers 501. */
  broker: Pick<Broker, 'name'> & Partial<Pick<Broker, 'capabilities'>> & Partial<BrokerAdmin>;
  state: Pick<JobStateStore, 'getJob' | 'updateJob'>;
  /** The pause flags; without them `paused` is null. */
  controls?: QueueControls | undefined;
  /** The rate and concurrency limits; without them `limits` is null. */
  queueLimits?: Pick<QueueLimits, 'limits'> | undefined;
  apiToken?: string | undefined;
  jsonBytes: number;
}

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;
/** Letters that may reach the dead letters between stats() and the list that checks ids. */
const LIST_MARGIN = 100;

const redriveSchema = z.union([
  z.strictObject({
    ids: z.array(z.string().min(1).max(200)).min(1).max(1000),
    dryRun: z.boolean().optional(),
  }),
  z.strictObject({ all: z.literal(true), dryRun: z.boolean().optional() }),
  // Every letter whose reason contains the text (bulk by filter, issue 17).
  z.strictObject({ match: z.string().min(1).max(500), dryRun: z.boolean().optional() }),
]);

/**
 * The operators' HTTP API over the broker's BrokerAdmin (what `polyqueue stats` and
 * `polyqueue dead` do from a shell), for scripts and the dashboard (issue 17):
 *
 *   GET    /v1/broker                        its name and capabilities
 *   GET    /v1/queues                        every queue's counts, pause flag and limits
 *   GET    /v1/queues/:q/dead?limit=&cursor= the dead letters, oldest first
 *   POST   /v1/queues/:q/dead/redrive        {ids} | {all: true} | {match: text}, dryRun -> how many
 *   DELETE /v1/queues/:q/dead?confirm=<q>    purge -> how many
 *   POST   /v1/jobs/:id/retry                a dead job back to its queue
 *
 * Every route needs the bearer token when API_TOKEN is set, reads too: dead letters hold
 * payloads (addresses, bodies).
 */
export function adminRoutes(deps: AdminRoutesDeps): Router {
  const router = Router();
  const auth = bearerAuth(deps.apiToken);
  const { broker, state, controls } = deps;

  /** The queue's dead-letter store, or the 404 / 501 the routes answer. */
  function deadLettersOf(queue: string): { store: DeadLetterStore; stats: BrokerAdmin['stats'] } {
    if (!(jobQueues as readonly string[]).includes(queue))
      throw new HttpProblem(
        404,
        'not-found',
        `no queue ${JSON.stringify(queue)}; the queues are ${jobQueues.join(', ')}`,
        {
          queues: jobQueues,
        },
      );
    if (typeof broker.deadLetters !== 'function' || typeof broker.stats !== 'function')
      throw new HttpProblem(
        501,
        'not-implemented',
        `the broker ${broker.name} does not implement BrokerAdmin (stats, dead letters)`,
        { broker: broker.name },
      );
    return { store: broker.deadLetters(queue), stats: broker.stats.bind(broker) };
  }

  router.get('/v1/broker', auth, (_req, res) => {
    // What the dashboard shows as badges: which features are native, emulated or missing.
    res.json({ name: broker.name, capabilities: broker.capabilities ?? null });
  });

  router.get('/v1/queues', auth, async (_req, res) => {
    // One state-store read for every queue; null (unknown) when it fails, never "not paused".
    const [paused, limits] = await Promise.all([
      controls ? controls.paused().catch(() => undefined) : undefined,
      deps.queueLimits ? deps.queueLimits.limits().catch(() => undefined) : undefined,
    ]);
    // null (unknown) when the store fails; every field null where the queue has no limit.
    const limitsOf = (name: string) => (limits ? limitsView(limits.get(name)) : null);
    // Unknown counts are null, with the reason: a 0 would read as an empty queue.
    const unknown = (name: string, flag: boolean | null, error: string) => ({
      name,
      ready: null,
      inFlight: null,
      delayed: null,
      dead: null,
      paused: flag,
      limits: limitsOf(name),
      error,
    });
    const rows = await Promise.all(
      jobQueues.map(async (name) => {
        const flag = paused ? paused.has(name) : null;
        if (typeof broker.stats !== 'function')
          return unknown(name, flag, `the broker ${broker.name} gives no counts`);
        try {
          const s = await broker.stats(name);
          return {
            name,
            ready: s.ready,
            inFlight: s.inFlight,
            delayed: s.delayed,
            dead: s.dead,
            paused: flag,
            limits: limitsOf(name),
          };
        } catch (error) {
          return unknown(name, flag, errorMessage(error));
        }
      }),
    );
    res.set('Cache-Control', 'no-store').json(rows);
  });

  router.get('/v1/queues/:queue/dead', auth, async (req, res) => {
    const queue = req.params.queue as string;
    const { store } = deadLettersOf(queue);
    const limit = wholeNumber(req, 'limit', DEFAULT_PAGE, 1, MAX_PAGE);
    // The store lists from the oldest with no cursor of its own: the cursor is a position in
    // that order, so a redrive or purge between two pages shifts what the next one starts at.
    const offset = wholeNumber(req, 'cursor', 0, 0, Number.MAX_SAFE_INTEGER);
    const letters = await store.list(offset + limit + 1);
    const page = letters.slice(offset, offset + limit);
    const nextCursor = letters.length > offset + limit ? String(offset + limit) : null;
    res.set('Cache-Control', 'no-store').json({ queue, items: page.map(describeDeadLetter), nextCursor });
  });

  router.post('/v1/queues/:queue/dead/redrive', auth, jsonBody(deps.jsonBytes), async (req, res) => {
    const queue = req.params.queue as string;
    const { store, stats } = deadLettersOf(queue);
    const parsed = redriveSchema.safeParse(req.body);
    if (!parsed.success)
      throw problems.validation(
        fieldErrors(parsed.error),
        'expected {ids: [...]}, {all: true} or {match: "text"}',
      );
    const body = parsed.data;
    const dryRun = body.dryRun === true;
    if ('match' in body) {
      const { ids, capped } = await deadLettersMatching(store, (await stats(queue)).dead, body.match);
      if (dryRun) return void res.json({ queue, dryRun, count: ids.length, capped });
      return void res.json({ queue, redriven: ids.length === 0 ? 0 : await store.redrive(ids), capped });
    }
    if ('all' in body) {
      if (dryRun) return void res.json({ queue, dryRun, count: (await stats(queue)).dead });
      return void res.json({ queue, redriven: await store.redrive('all') });
    }
    const ids = [...new Set(body.ids)];
    const missing = await missingDeadLetters(store, ids, (await stats(queue)).dead + LIST_MARGIN);
    if (missing.length > 0)
      throw new HttpProblem(
        409,
        'not-dead',
        `not in the dead letters of ${queue}: ${missing.join(', ')}; nothing was redriven`,
        { ids: missing },
      );
    if (dryRun) return void res.json({ queue, dryRun, count: ids.length });
    // Another redrive of the same ids between the check and here takes them first: then fewer.
    res.json({ queue, redriven: await store.redrive(ids) });
  });

  router.delete('/v1/queues/:queue/dead', auth, async (req, res) => {
    const queue = req.params.queue as string;
    const { store } = deadLettersOf(queue);
    if (req.query.confirm !== queue)
      throw new HttpProblem(
        400,
        'confirmation-required',
        `purging deletes every dead letter of ${queue} for good; repeat with ?confirm=${queue}`,
      );
    res.json({ queue, purged: await store.purge() });
  });

  router.post('/v1/jobs/:id/retry', auth, async (req, res) => {
    const id = req.params.id as string;
    const job = JOB_ID_PATTERN.test(id) ? await state.getJob(id) : undefined;
    if (!job) throw problems.notFound(`no job ${JSON.stringify(id)}`);
    if (job.status !== 'dead')
      throw new HttpProblem(
        409,
        'job-not-dead',
        `job ${id} is ${job.status}; only a dead job can be retried`,
        {
          jobStatus: job.status,
        },
      );
    const { store } = deadLettersOf(job.queue);
    // Redrive first: a record set back to queued with nothing queued would wait forever.
    if ((await store.redrive([id])) === 0)
      throw new HttpProblem(
        409,
        'not-in-dead-letters',
        `job ${id} is dead but not in the dead letters of ${job.queue} (purged, or redriven already)`,
      );
    // Compare-and-set: a worker that already took the redriven job has moved the record on.
    await state.updateJob(id, { status: 'queued' }, 'dead');
    const location = `/v1/jobs/${encodeURIComponent(id)}`;
    res.status(202).location(location).json({ id, queue: job.queue, status: 'queued', location });
  });

  return router;
}

/** A whole-number query parameter within [min, max], its default when absent; 422 otherwise. */
function wholeNumber(req: Request, name: string, fallback: number, min: number, max: number): number {
  const raw = req.query[name];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= min && value <= max))
    throw problems.validation(
      [{ field: name, message: `a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})` }],
      'invalid query',
    );
  return value;
}
