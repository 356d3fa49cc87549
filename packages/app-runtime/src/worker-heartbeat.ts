import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { createWorkerRegistry } from '@polyqueue/brokers';
import { errorMessage, type Logger, startHeartbeat, type WorkerRegistry } from '@polyqueue/core';

/** This package's version, what GET /v1/workers shows; the worker apps ship with it. */
const VERSION: string = createRequire(import.meta.url)('../package.json').version;

export interface WorkerHeartbeatOptions {
  stateUrl: string;
  env: Record<string, string | undefined>;
  queue: string;
  concurrency: number;
  inFlight: () => number;
  logger: Logger;
  /** An open registry instead of one from stateUrl (tests); left open by stop(). */
  registry?: WorkerRegistry;
}

/**
 * Announces this worker process in the state store (GET /v1/workers) every HEARTBEAT_MS until
 * the returned stop(). A registry that cannot be opened or written is logged, never fatal: it
 * is for operators, and the jobs matter more.
 */
export async function startWorkerHeartbeat(options: WorkerHeartbeatOptions): Promise<() => Promise<void>> {
  let registry = options.registry;
  try {
    registry ??= await createWorkerRegistry(options.stateUrl, options.env);
  } catch (error) {
    options.logger.warn({ err: errorMessage(error) }, 'no worker heartbeats: the registry did not open');
    return async () => {};
  }
  const host = hostname();
  const id = `${host}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const startedAt = new Date().toISOString();
  let warned = false;
  const stop = startHeartbeat(
    registry,
    () => ({
      id,
      queue: options.queue,
      host,
      pid: process.pid,
      concurrency: options.concurrency,
      inFlight: options.inFlight(),
      version: VERSION,
      startedAt,
    }),
    (error) => {
      // Once per process: an outage of the state store is reported by /readyz already.
      if (!warned) options.logger.warn({ err: errorMessage(error) }, 'a worker heartbeat failed');
      warned = true;
    },
  );
  return async () => {
    await stop();
    if (!options.registry) await registry.close().catch(() => {});
  };
}
