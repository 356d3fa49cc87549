import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createBrokerFromEnv, createStateStore } from '@polyqueue/brokers';
import { type Broker, createLogger, type Logger, redact, type StateStore } from '@polyqueue/core';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { RuntimeConfig } from './config';

type Env = Record<string, string | undefined>;

/** What every polyqueue process holds: one broker, one state store, one metrics registry. */
export interface AppRuntime {
  logger: Logger;
  broker: Broker;
  state: StateStore;
  registry: Registry;
  /** Closes the broker and the state store; safe to call twice. */
  close(): Promise<void>;
}

export interface OpenRuntimeOptions {
  /** The process name in logs and the `service` label of default metrics. */
  name: string;
  env: Env;
  config: RuntimeConfig;
  logger?: Logger;
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
  let state: StateStore;
  try {
    state = await createStateStore(options.config.STATE_URL);
  } catch (error) {
    await broker.close().catch(() => {});
    throw error;
  }
  logger.info({ broker: broker.name, state: redact(options.config.STATE_URL) }, 'connected');

  let closing: Promise<void> | undefined;
  return {
    logger,
    broker,
    state,
    registry,
    close() {
      closing ??= (async () => {
        const results = await Promise.allSettled([broker.close(), state.close()]);
        for (const r of results)
          if (r.status === 'rejected') logger.warn({ err: r.reason }, 'error while closing');
      })();
      return closing;
    },
  };
}

async function ensureSqliteFolder(path: string | undefined): Promise<void> {
  if (!path || path === ':memory:' || path.startsWith('file:')) return;
  await mkdir(dirname(decodeURIComponent(path)), { recursive: true });
}
