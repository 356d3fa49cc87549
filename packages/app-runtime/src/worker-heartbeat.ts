import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { createWorkerRegistry } from '@polyqueue/brokers';
import { errorMessage, type Logger, startHeartbeat, type WorkerRegistry } from '@polyqueue/core';

/** This package's version, what GET /v1/workers shows; the worker apps ship with it. */
const VERSION: string = createRequire(import.meta.url)('../package.json').version;

/**
 * A new id for this worker process as GET /v1/workers lists it (host:pid:random): the attempt
 * history names each attempt's worker by the same id.
 */
export function workerProcessId(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

export interface WorkerHeartbeatOptions {
  /** This process's id (workerProcessId()); a new one when absent. */
  id?: string;
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
  const id = options.id ?? workerProcessId();
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
