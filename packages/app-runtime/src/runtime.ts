import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  createBrokerFromEnv,
  createQueueControls,
  createQueueLimits,
  createStateStore,
} from '@polyqueue/brokers';
import {
  type CompleteBroker,
  createLogger,
  type Logger,
  type QueueControls,
  type QueueLimits,
  redact,
  type StateStore,
} from '@polyqueue/core';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { RuntimeConfig } from './config';

type Env = Record<string, string | undefined>;

/** What every polyqueue process holds: one broker, one state store, one metrics registry. */
export interface AppRuntime {
  logger: Logger;
  /** The contract plus events and admin: what the registry promises (and checks) of every driver. */
  broker: CompleteBroker;
  state: StateStore;
  /** The cluster-wide pause flags, in the same backend as `state` (STATE_URL). */
  controls: QueueControls;
  /** The cluster-wide rate and concurrency limits, in the same backend as `state` (STATE_URL). */
  limits: QueueLimits;
  registry: Registry;
  /**
   * Closes the broker and the state store, waiting for each at most `closeTimeoutMs`; safe to
   * call twice. Whatever has not closed by then is left to the process's exit.
   */
  close(): Promise<void>;
}

/** How long close() waits for the broker and the state store: past it, the process exits anyway. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 3_000;

export interface OpenRuntimeOptions {
  /** The process name in logs and the `service` label of default metrics. */
  name: string;
  env: Env;
  config: RuntimeConfig;
  logger?: Logger;
  /** See AppRuntime.close(); DEFAULT_CLOSE_TIMEOUT_MS when absent. */
  closeTimeoutMs?: number;
}

/**
 * Connects the broker chosen by BROKER and the state store chosen by STATE_URL. The sqlite
 * defaults point into ./var, which a fresh checkout does not have yet, so its folder is made.
 */
export async function openRuntime(options: OpenRuntimeOptions): Promise<AppRuntime> {
  const logger = options.logger ?? createLogger(options.name, options.config.LOG_LEVEL);
  await ensureSqliteFolder(
    options.config.STATE_URL.startsWith('sqlite:') ? options.config.STATE_URL.slice(7) : undefined,
  );
  const brokerName = options.config.BROKER;
  if (brokerName === 'sqlite') await ensureSqliteFolder(options.env.SQLITE_PATH ?? './var/polyqueue.db');

  const registry = new Registry();
  registry.setDefaultLabels({ service: options.name });
  collectDefaultMetrics({ register: registry });

  const broker = await createBrokerFromEnv({ ...options.env, BROKER: brokerName }, logger);
  let state: StateStore | undefined;
  let controls: QueueControls | undefined;
  let limits: QueueLimits;
  try {
    state = await createStateStore(options.config.STATE_URL, options.env);
    controls = await createQueueControls(options.config.STATE_URL, options.env);
    limits = await createQueueLimits(options.config.STATE_URL, options.env);
  } catch (error) {
    await Promise.all([
      broker.close().catch(() => {}),
      state?.close().catch(() => {}),
      controls?.close().catch(() => {}),
    ]);
    throw error;
  }
  const store = state;
  const flags = controls;
  logger.info({ broker: broker.name, state: redact(options.config.STATE_URL) }, 'connected');

  let closing: Promise<void> | undefined;
  return {
    logger,
    broker,
    state: store,
    controls: flags,
    limits,
    registry,
    close() {
      const timeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
      closing ??= (async () => {
        await Promise.all([
          closeWithin('the broker', () => broker.close(), timeoutMs, logger),
          closeWithin('the state store', () => store.close(), timeoutMs, logger),
          closeWithin('the pause flags', () => flags.close(), timeoutMs, logger),
          closeWithin('the queue limits', () => limits.close(), timeoutMs, logger),
        ]);
      })();
      return closing;
    },
  };
}

/**
 * Closes one resource, waiting at most timeoutMs. A close can wait on work that will not end
 * soon: mysql2's pool.end() sends its QUIT behind the queries in flight, so a query waiting on
 * a row lock holds it until the lock wait times out (50 s by default); a client whose server
 * vanished without a reset may wait for TCP. Past the bound the process exits anyway, which
 * closes the sockets; the log says what was left.
 */
export async function closeWithin(
  what: string,
  close: () => Promise<void>,
  timeoutMs: number,
  logger: Logger,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
    timer.unref();
  });
  try {
    const outcome = await Promise.race([close().then(() => 'closed' as const), late]);
    if (outcome === 'late')
      logger.warn(
        { timeoutMs },
        `${what} did not close within ${timeoutMs} ms (work still in flight on its connections); exiting without waiting`,
      );
  } catch (error) {
    logger.warn({ err: error }, `error while closing ${what}`);
  } finally {
    clearTimeout(timer);
  }
}

async function ensureSqliteFolder(path: string | undefined): Promise<void> {
  if (!path || path === ':memory:' || path.startsWith('file:')) return;
  await mkdir(dirname(decodeURIComponent(path)), { recursive: true });
}
