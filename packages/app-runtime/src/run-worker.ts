import {
  ConfigError,
  createRuntimeMetrics,
  createWorker,
  type Logger,
  registerQueueDepthGauge,
  shutdownSignal,
  type WorkerOptions,
} from '@polyqueue/core';
import type { WorkerConfig } from './config';
import { createJobRecorder } from './job-recorder';
import { startProbeServer } from './probe-server';
import { type AppRuntime, openRuntime } from './runtime';

type Env = Record<string, string | undefined>;

export interface WorkerProcessOptions {
  /** Process name for logs and metrics, e.g. "email-worker". */
  name: string;
  queue: string;
  env: Env;
  config: WorkerConfig;
  /** Builds the handlers once the broker and state store are open; `close` runs after draining. */
  setup(runtime: AppRuntime): Promise<{ handlers: WorkerOptions['handlers']; close?: () => Promise<void> }>;
  /** Defaults to SIGTERM / SIGINT. */
  signal?: AbortSignal;
  logger?: Logger;
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
  try {
    const { handlers, close } = await options.setup(runtime);
    closeHandlers = close;
    const worker = createWorker({
      broker,
      queue,
      handlers,
      idempotency: state,
      concurrency: config.WORKER_CONCURRENCY,
      // Heartbeats renew the delivery and the claim every third of this while a handler runs.
      leaseMs: broker.leaseMs ?? config.JOB_LEASE_MS,
      maxAttempts: config.MAX_ATTEMPTS,
      backoff: { baseMs: config.BACKOFF_BASE_MS, maxMs: config.BACKOFF_MAX_MS },
      drainTimeoutMs: config.DRAIN_TIMEOUT_MS,
      logger,
      metrics: createRuntimeMetrics(registry),
      onOutcome: createJobRecorder({ state, broker, logger }),
    });
    registerQueueDepthGauge(registry, broker, [queue]);
    if (config.METRICS_PORT > 0) {
      probe = await startProbeServer({
        port: config.METRICS_PORT,
        registry,
        ready: async () => {
          await Promise.all([broker.ping(), state.ping()]);
        },
      });
      logger.info({ port: probe.port }, 'serving /metrics, /healthz and /readyz');
    }
    await worker.run(signal, () =>
      logger.info({ queue, broker: broker.name, concurrency: config.WORKER_CONCURRENCY }, 'worker ready'),
    );
    logger.info({ queue }, 'drained; exiting');
  } finally {
    if (probe) await new Promise((resolveClose) => probe!.server.close(resolveClose));
    if (closeHandlers)
      await closeHandlers().catch((error) => logger.warn({ err: error }, 'error while closing handlers'));
    await runtime.close();
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
