import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type {
  Broker,
  BrokerAdmin,
  JobStateStore,
  Logger,
  MetricsHistory,
  QueueControls,
  QueueLimits,
  ScheduleStore,
  WorkerRegistry,
} from '@polyqueue/core';
import { newJobId, registerQueueDepthGauge, silentLogger } from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Counter, Histogram, Registry } from 'prom-client';
import type { ApiContext } from './context';
import { directJobRoutes } from './direct-routes';
import { toProblem } from './http';
import { HttpProblem, problems, sendProblem } from './problem';
import { adminRoutes } from './routes-admin';
import { bulkRoutes } from './routes-bulk';
import { dashboardRoutes } from './routes-dashboard';
import { historyRoutes } from './routes-history';
import { imageRoutes } from './routes-images';
import { jobSearchRoutes } from './routes-job-search';
import { jobRoutes } from './routes-jobs';
import { queueRoutes } from './routes-queues';
import { scheduleRoutes } from './routes-schedules';
import { workerRoutes } from './routes-workers';
import { drain } from './uploads';

export interface ApiDeps {
  /** Jobs are published; /readyz pings the broker and /metrics reads each queue's stats. */
  broker: Pick<Broker, 'publish' | 'name' | 'capabilities'> & Pick<BrokerAdmin, 'ping' | 'stats'>;
  /** Job status records; ping() is what /readyz calls. */
  state: JobStateStore & { ping(): Promise<void> };
  /** The pause flags: POST /v1/queues/:q/pause and /resume are served only with them. */
  controls?: QueueControls;
  /** The rate and concurrency limits: GET and PUT /v1/queues/:q/limits are served only with them. */
  queueLimits?: QueueLimits;
  /** The schedules (STATE_URL's backend): /v1/schedules is served only with them. */
  schedules?: ScheduleStore;
  /** The worker heartbeats (STATE_URL's backend): GET /v1/workers is served only with them. */
  workers?: WorkerRegistry;
  /** The workers' per-minute throughput (STATE_URL's backend): GET /v1/queues/:q/history reads it. */
  history?: MetricsHistory;
  /** PROMETHEUS_URL: the history is read from Prometheus instead of `history`. */
  prometheusUrl?: string;
  /** Uploads go to <storageRoot>/uploads/<job id>/, variants come from <storageRoot>/variants/. */
  storageRoot: string;
  /** When set, POST and admin endpoints require it as a bearer token (or the dashboard's session). */
  apiToken?: string;
  limits?: { jsonBytes?: number; imageBytes?: number };
  /** Where /metrics comes from; a fresh registry when absent. */
  registry?: Registry;
  logger?: Logger;
  now?: () => Date;
  newId?: () => string;
}

/**
 * The HTTP API as one request listener, without listening (main.ts listens; tests use
 * supertest): the job POSTs first (direct-routes.ts), then the Express app for every route.
 *
 *   POST /v1/emails               send_email payload           -> 202 + Location
 *   POST /v1/images               raw image/* body or multipart -> 202 + Location
 *   POST /v1/jobs                 {type, payload}              -> 202 + Location
 *   GET  /v1/jobs/:id             status, attempts, lastError, result
 *   DELETE /v1/jobs/:id           cancel a job not yet finished -> 200 | 202 (running)
 *   GET  /v1/images/:id/:variant  a produced variant
 *   POST /v1/queues/:q/pause, /resume  stop or restart every worker's fetching from a queue
 *   POST, GET /v1/schedules, DELETE /v1/schedules/:name  recurring jobs (routes-schedules.ts)
 *   GET  /v1/broker, /v1/queues, dead letters ...  the admin API (routes-admin.ts)
 *   GET  /v1/queues/:q/history    throughput and waits for the charts (routes-history.ts)
 *   POST /v1/jobs/bulk            retry or cancel every job a search matches (routes-bulk.ts)
 *   GET  /dashboard               the operators' dashboard over the admin API (routes-dashboard.ts)
 *   GET  /healthz, /readyz, /metrics
 *
 * The POSTs take a delay and priority (delayMs, runAt, priority): body fields on the JSON
 * routes, Polyqueue-* headers on /v1/images (flow-control.ts).
 *
 * Errors are application/problem+json (RFC 9457).
 */
export function createServer(deps: ApiDeps): RequestListener {
  const registry = deps.registry ?? new Registry();
  const logger = deps.logger ?? silentLogger();
  const context: ApiContext = {
    broker: deps.broker,
    jobs: deps.state,
    state: deps.state,
    logger,
    now: deps.now ?? (() => new Date()),
    newId: deps.newId ?? newJobId,
    storageRoot: deps.storageRoot,
    apiToken: deps.apiToken,
    limits: {
      jsonBytes: deps.limits?.jsonBytes ?? 100 * 1024,
      imageBytes: deps.limits?.imageBytes ?? 20 * 1024 * 1024,
    },
    enqueued: new Counter({
      name: 'polyqueue_jobs_enqueued_total',
      help: 'Jobs accepted by the API (replays of an Idempotency-Key not counted)',
      labelNames: ['type'],
      registers: [registry],
    }),
  };

  const requests = new Counter({
    name: 'polyqueue_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'polyqueue_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  registerQueueDepthGauge(registry, deps.broker, jobQueues);

  // The request metrics, for Express' routes and the direct ones alike.
  const observe = (req: IncomingMessage, res: ServerResponse, route: () => string) => {
    const started = performance.now();
    res.on('finish', () => {
      const labels = { method: req.method ?? '', route: route() };
      requests.inc({ ...labels, status: String(res.statusCode) });
      latency.observe(labels, (performance.now() - started) / 1000);
    });
  };
  /** The answer to a request that failed: its problem, or a 500 that the log explains. */
  const answerError = async (error: unknown, req: IncomingMessage, res: ServerResponse) => {
    let problem = toProblem(error, context.limits);
    if (!problem) {
      const path = (req.url ?? '').split('?')[0];
      logger.error({ err: error, method: req.method, path }, 'request failed');
      problem = new HttpProblem(
        500,
        'internal-error',
        'the server could not handle the request; see its logs',
      );
    }
    // Read the rest of an unread body first: answering mid-upload makes clients see a reset.
    if (!req.readableEnded) {
      res.setHeader('Connection', 'close');
      await drain(req);
    }
    if (res.headersSent) return;
    sendProblem(req, res, problem);
  };

  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    observe(req, res, () => (req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched'));
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await Promise.allSettled([deps.broker.ping(), deps.state.ping()]);
    const [broker, state] = checks.map((c) =>
      c.status === 'fulfilled' ? 'ok' : String((c.reason as Error)?.message ?? c.reason),
    );
    const ready = checks.every((c) => c.status === 'fulfilled');
    res
      .status(ready ? 200 : 503)
      .json({ status: ready ? 'ready' : 'unavailable', checks: { broker, state } });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  app.use(jobRoutes(context));
  app.use(imageRoutes(context));
  app.use(
    queueRoutes({
      controls: deps.controls,
      queueLimits: deps.queueLimits,
      apiToken: deps.apiToken,
      registry,
      jsonBytes: context.limits.jsonBytes,
    }),
  );
  app.use(scheduleRoutes({ schedules: deps.schedules, ctx: context }));
  app.use(adminRoutes({ ...deps, jsonBytes: context.limits.jsonBytes }));
  app.use(jobSearchRoutes(deps));
  app.use(bulkRoutes({ ...deps, jsonBytes: context.limits.jsonBytes }));
  app.use(workerRoutes(deps));
  app.use(historyRoutes(deps));
  app.use(dashboardRoutes(deps.apiToken));

  app.use((req, _res, next) => {
    next(problems.notFound(`no route for ${req.method} ${req.path}`));
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => answerError(error, req, res));

  const direct = directJobRoutes(context, {
    observe: (req, res, route) => observe(req, res, () => route),
    answerError,
  });
  return (req, res) => {
    if (!direct(req, res)) app(req, res);
  };
}
