import {
  assertCapabilities,
  type Broker,
  ConfigError,
  createRuntimeMetrics,
  createWorker,
  type Logger,
  limited,
  pausable,
  type QueueRequirements,
  registerQueueDepthGauge,
  registerQueueLimitGauges,
  registerQueuePausedGauge,
  shutdownSignal,
  type WorkerOptions,
} from '@polyqueue/core';
import { recordAttempts } from './attempt-recorder';
import type { WorkerConfig } from './config';
import { createJobRecorder, JOB_EVENTS_TOPIC } from './job-recorder';
import { startOutcomeHistory } from './outcome-history';
import { startProbeServer } from './probe-server';
import { type AppRuntime, closeWithin, DEFAULT_CLOSE_TIMEOUT_MS, openRuntime } from './runtime';
import { startWorkerHeartbeat, workerProcessId } from './worker-heartbeat';

type Env = Record<string, string | undefined>;

export interface WorkerProcessOptions {
  /** Process name for logs and metrics, e.g. "email-worker". */
  name: string;
  queue: string;
  env: Env;
  config: WorkerConfig;
  /** Builds the handlers once the broker and state store are open; `close` runs after draining. */
  setup(runtime: AppRuntime): Promise<{ handlers: WorkerOptions['handlers']; close?: () => Promise<void> }>;
  /**
   * What this worker's queue needs of the broker beyond what every worker needs
   * (WORKER_REQUIREMENTS); checked at start-up, before setup().
   */
  needs?: QueueRequirements;
  /** Defaults to SIGTERM / SIGINT. */
  signal?: AbortSignal;
  logger?: Logger;
}

/**
 * What every worker process needs of its broker: pub/sub, for the job lifecycle events it
 * publishes (createJobRecorder). Retry backoff needs nothing here: Delivery.retry(delayMs)
 * honours the delay on every driver, whatever capabilities.delayedDelivery (which is about
 * publishing with delayMs) says.
 */
export const WORKER_REQUIREMENTS: QueueRequirements = { pubsub: true };
const WHY: Partial<Record<keyof QueueRequirements, string>> = {
  pubsub: `job lifecycle events on the ${JOB_EVENTS_TOPIC} topic`,
};

/**
 * The start-up check of a worker's broker: fails (a ConfigError, so one line and exit 1) when
 * it lacks what the queue needs, and warns when the broker loses the job of a worker that dies
 * mid-job (capabilities.delivery 'at-most-once': redis-list), which an operator must know
 * before trusting retries.
 */
export function checkWorkerBroker(
  broker: Broker,
  queue: string,
  logger: Logger,
  needs: QueueRequirements = {},
): void {
  assertCapabilities(broker, queue, { ...WORKER_REQUIREMENTS, ...needs }, WHY);
  if (broker.capabilities.delivery === 'at-most-once')
    logger.warn(
      { queue, broker: broker.name, delivery: 'at-most-once' },
      `broker ${broker.name} is at-most-once: a job whose worker dies mid-job is lost, not retried; choose an at-least-once BROKER where that matters`,
    );
}

/**
 * A worker process from start to exit: connect, consume until SIGTERM / SIGINT, drain the
 * in-flight jobs (bounded by DRAIN_TIMEOUT_MS), close everything. The handlers' outcomes go to
 * the state store and the job-events topic through createJobRecorder.
 */
export async function runWorkerProcess(options: WorkerProcessOptions): Promise<void> {
  const { config, queue } = options;
  const runtime = await openRuntime({ name: options.name, env: options.env, config, logger: options.logger });
  const { logger, broker, state, registry } = runtime;
  const signal = options.signal ?? shutdownSignal(logger);
  let closeHandlers: (() => Promise<void>) | undefined;
  let probe: Awaited<ReturnType<typeof startProbeServer>> | undefined;
  let stopHeartbeat: (() => Promise<void>) | undefined;
  let history: Awaited<ReturnType<typeof startOutcomeHistory>> | undefined;
  try {
    checkWorkerBroker(broker, queue, logger, options.needs);
    const { handlers, close } = await options.setup(runtime);
    closeHandlers = close;
    // Throughput and waits per minute for the dashboard's charts, flushed every few seconds.
    history = await startOutcomeHistory({ stateUrl: config.STATE_URL, env: options.env, logger, registry });
    // What the consumer last said of its connection: /readyz fails while it is lost, so a worker
    // that is reconnecting is not reported ready even where ping() on another connection works.
    let consumerOutage: Error | undefined;
    const leaseMs = broker.leaseMs ?? config.JOB_LEASE_MS;
    // A job waits for the queue's rate and concurrency limits (PUT /v1/queues/:q/limits) first.
    const withinLimits = limited(broker, { limits: runtime.limits, leaseMs, logger });
    // This process's id: its heartbeat's, and the worker each attempt of a job's history names.
    const workerId = workerProcessId();
    const worker = createWorker({
      // A paused queue (polyqueue pause, POST /v1/queues/:q/pause) is not fetched from.
      broker: pausable(withinLimits, { controls: runtime.controls, logger }),
      queue,
      handlers,
      idempotency: state,
      concurrency: config.WORKER_CONCURRENCY,
      // Heartbeats renew the delivery and the claim every third of this while a handler runs.
      leaseMs,
      maxAttempts: config.MAX_ATTEMPTS,
      backoff: { baseMs: config.BACKOFF_BASE_MS, maxMs: config.BACKOFF_MAX_MS },
      drainTimeoutMs: config.DRAIN_TIMEOUT_MS,
      logger,
      metrics: createRuntimeMetrics(registry),
      // Each attempt's start and end also go to the job's history (GET /v1/jobs/:id attemptHistory).
      onOutcome: recordAttempts(createJobRecorder({ state, broker, logger, history }), {
        state,
        worker: workerId,
        logger,
      }),
      // A running job's record is read every second, so DELETE /v1/jobs/:id aborts its signal.
      jobs: state,
      onConnectionChange: (connected, error) => {
        consumerOutage = connected ? undefined : (error ?? new Error('connection lost'));
        if (connected) logger.info({ queue }, 'consumer connected again');
        else logger.warn({ queue, err: error }, 'consumer lost its connection; reconnecting');
      },
    });
    registerQueueDepthGauge(registry, broker, [queue]);
    registerQueuePausedGauge(registry, runtime.controls, [queue]);
    registerQueueLimitGauges(registry, runtime.limits, [queue]);
    if (config.METRICS_PORT > 0) {
      probe = await startProbeServer({
        port: config.METRICS_PORT,
        registry,
        ready: async () => {
          if (consumerOutage) throw new Error(`consumer disconnected: ${consumerOutage.message}`);
          await Promise.all([broker.ping(), state.ping()]);
        },
      });
      logger.info({ port: probe.port }, 'serving /metrics, /healthz and /readyz');
    }
    // GET /v1/workers lists this process while it beats (worker-heartbeat.ts).
    const { STATE_URL: stateUrl, WORKER_CONCURRENCY: concurrency } = config;
    const inFlight = () => worker.inFlight();
    stopHeartbeat = await startWorkerHeartbeat({
      id: workerId,
      stateUrl,
      env: options.env,
      queue,
      concurrency,
      inFlight,
      logger,
    });
    const running = worker.run(signal, () =>
      logger.info({ queue, broker: broker.name, concurrency: config.WORKER_CONCURRENCY }, 'worker ready'),
    );
    const drained = await drainedOrAbandoned(running, signal, config.DRAIN_TIMEOUT_MS + ABANDON_AFTER_MS);
    if (drained) logger.info({ queue }, 'drained; exiting');
    else
      logger.error(
        { queue, drainTimeoutMs: config.DRAIN_TIMEOUT_MS },
        'jobs still running after DRAIN_TIMEOUT_MS ignored their abort; exiting without them (their deliveries come back after their lease)',
      );
  } finally {
    await stopHeartbeat?.();
    await history?.stop();
    if (probe) {
      const server = probe.server;
      // A scrape or probe in progress must not hold the exit: idle sockets go now, busy ones soon.
      server.closeIdleConnections();
      const closed = new Promise((resolveClose) => server.close(resolveClose));
      await closeWithin('the probe server', () => closed.then(() => {}), DEFAULT_CLOSE_TIMEOUT_MS, logger);
      server.closeAllConnections();
    }
    if (closeHandlers) await closeWithin('the handlers', closeHandlers, DEFAULT_CLOSE_TIMEOUT_MS, logger);
    await runtime.close();
  }
}

/**
 * After the runtime's own drain timeout has aborted the jobs' signals, how long a job that
 * ignores its signal (an SMTP send waiting on a silent server for its 60 s socket timeout) is
 * still waited for before the process exits without it.
 */
const ABANDON_AFTER_MS = 1_000;

/**
 * Resolves true when `running` (the worker's run) ends, or false once `limitMs` has passed
 * since the shutdown signal with jobs still running: the process then exits without them, as
 * it would on a crash, and their deliveries come back after their lease. A failure of the run
 * (a consumer that could not start) rejects, as before.
 */
async function drainedOrAbandoned(
  running: Promise<void>,
  signal: AbortSignal,
  limitMs: number,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let arm: (() => void) | undefined;
  const abandoned = new Promise<false>((resolve) => {
    arm = () => {
      timer = setTimeout(() => resolve(false), limitMs);
      timer.unref();
    };
    if (signal.aborted) arm();
    else signal.addEventListener('abort', arm, { once: true });
  });
  try {
    return await Promise.race([running.then(() => true as const), abandoned]);
  } finally {
    clearTimeout(timer);
    if (arm) signal.removeEventListener('abort', arm);
    // Abandoned: whatever the run does later is no longer anyone's concern.
    running.catch(() => {});
  }
}

/**
 * An entry point's last line: runs main, and on a start-up failure prints one clear line
 * (a ConfigError names the variable) and exits 1.
 */
export function runMain(name: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      const message =
        error instanceof ConfigError
          ? error.message
          : error instanceof Error
            ? (error.stack ?? error.message)
            : String(error);
      process.stderr.write(`${name}: ${message}\n`);
      process.exit(1);
    },
  );
}
