import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AppRuntime, openRuntime, runMain } from '@polyqueue/app-runtime';
import { createMetricsHistory, createScheduleStore, createWorkerRegistry } from '@polyqueue/brokers';
import { errorMessage, type Logger, newJobId, shutdownSignal } from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import { loadApiConfig } from './config';
import { loadSchedulesFile, startScheduler } from './scheduling';
import { createServer } from './server';

/** The API process: parse the environment once, connect, listen, and on SIGTERM / SIGINT close. */
async function main(): Promise<void> {
  const config = loadApiConfig(process.env);
  const runtime = await openRuntime({ name: 'api', env: process.env, config });
  const { logger } = runtime;
  const signal = shutdownSignal(logger);
  // Every API replica runs the scheduler; the state store's claims let one of them fire a tick.
  const schedules = await createScheduleStore(config.STATE_URL, process.env);
  if (config.SCHEDULES_FILE) {
    const count = await loadSchedulesFile(config.SCHEDULES_FILE, schedules, new Date());
    logger.info({ file: config.SCHEDULES_FILE, count }, 'schedules loaded');
  }
  const scheduler = startScheduler({
    store: schedules,
    claims: runtime.state,
    enqueue: {
      broker: runtime.broker,
      jobs: runtime.state,
      newId: newJobId,
      now: () => new Date(),
      logger,
    },
    logger,
  });
  const workers = await createWorkerRegistry(config.STATE_URL, process.env);
  // The workers write it; with PROMETHEUS_URL the charts come from Prometheus instead.
  const history = config.PROMETHEUS_URL
    ? undefined
    : await createMetricsHistory(config.STATE_URL, process.env);
  const app = createServer({
    broker: runtime.broker,
    state: runtime.state,
    controls: runtime.controls,
    queueLimits: runtime.limits,
    schedules,
    workers,
    ...(history ? { history } : {}),
    ...(config.PROMETHEUS_URL ? { prometheusUrl: config.PROMETHEUS_URL } : {}),
    storageRoot: config.STORAGE_ROOT,
    apiToken: config.API_TOKEN,
    limits: { jsonBytes: config.JSON_MAX_BYTES, imageBytes: config.IMAGE_MAX_BYTES },
    registry: runtime.registry,
    logger,
  });
  // Without HOST, node listens on :: where IPv6 exists and on 0.0.0.0 otherwise.
  const server = createHttpServer(app);
  if (config.HOST) server.listen(config.PORT, config.HOST);
  else server.listen(config.PORT);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  }).catch(async (error) => {
    await runtime.close();
    throw error;
  });
  const { port } = server.address() as AddressInfo;
  logger.info(
    { port, broker: runtime.broker.name, auth: config.API_TOKEN ? 'bearer' : 'none' },
    `listening on http://localhost:${port}`,
  );
  void checkQueuesAtStart(runtime, logger);

  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  logger.info('closing: finishing open requests');
  // Idle keep-alive sockets would hold close() open; requests in progress get DRAIN_TIMEOUT_MS
  // (an upload or a publish waiting for a broker that is down could otherwise hold it for ever).
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => {
    logger.warn(
      { drainTimeoutMs: config.DRAIN_TIMEOUT_MS },
      'requests still running after DRAIN_TIMEOUT_MS; closing their connections',
    );
    server.closeAllConnections();
  }, config.DRAIN_TIMEOUT_MS);
  force.unref();
  await closed;
  clearTimeout(force);
  await scheduler.stop();
  await schedules.close?.();
  await workers.close();
  await history?.close();
  // Bounded: a state query still waiting on a lock keeps its MySQL connection, and the pool's
  // end() waits for it; runMain's exit then closes what is left.
  await runtime.close();
  logger.info('closed');
}

/**
 * Reads each queue's stats once, as the first metrics scrape would, then asks the broker if it
 * is ready: a broker that checks a queue's keys when it first meets it (Redis: a key of the
 * wrong type left by another driver) then names the problem in the start-up log and in
 * /readyz, not only in the 503 of each POST. In the background, so an unreachable broker does
 * not delay listening; it only logs.
 */
async function checkQueuesAtStart(runtime: AppRuntime, logger: Logger): Promise<void> {
  await Promise.allSettled(jobQueues.map((queue) => runtime.broker.stats(queue)));
  await runtime.broker
    .ping()
    .catch((error: unknown) => logger.error({ err: error }, `broker not ready: ${errorMessage(error)}`));
}

runMain('api', main);
