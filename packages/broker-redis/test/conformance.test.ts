import { drivers, queueKeys } from '@polyqueue/broker-redis';
import { connectDriver, runConformanceSuite } from '@polyqueue/testkit';
import { afterAll } from 'vitest';
import {
  canRestart,
  ensureRedisRunning,
  REDIS_URL,
  rawClient,
  restartRedis,
  SERVER_HINT,
} from './redis-server';

const LEASE_MS = 2_000;
const PREFIX = 'pqtest';
const env = {
  REDIS_URL,
  POLYQUEUE_PREFIX: PREFIX,
  REDIS_LEASE_MS: String(LEASE_MS),
  REDIS_BLOCK_MS: '500',
  REDIS_POLL_MS: '100',
};

/** The package's entry, for the crash scenario's forked consumer. */
const driverModule = new URL('../src/index.ts', import.meta.url).href;

const raw = rawClient();
afterAll(async () => {
  raw.disconnect();
  // The restart scenario stops the server; whatever happened, leave it running.
  if (canRestart) await ensureRedisRunning();
});

const restartServer = canRestart ? restartRedis : undefined;
/**
 * The local Redis runs without persistence (--save "" --appendonly no, as on the CI machine)
 * and restartRedis shuts it down with NOSAVE: a restart empties it. The restart scenario then
 * checks only that consuming resumes, and reports what was lost.
 */
const durableAcrossRestart = false;

for (const broker of ['redis-list', 'redis-reliable'] as const) {
  runConformanceSuite({
    broker,
    createBroker: () => connectDriver(drivers[broker]!, env),
    driverModule,
    env,
    serverHint: SERVER_HINT,
    leaseMs: LEASE_MS,
    // A classic producer: RPUSH polyqueue:Q '<json>'.
    publishRaw: async (queue, body) => {
      await raw.rpush(queueKeys(PREFIX, queue).main, body);
    },
    restartServer,
    durableAcrossRestart,
  });
}

runConformanceSuite({
  broker: 'redis-streams',
  createBroker: () => connectDriver(drivers['redis-streams']!, env),
  driverModule,
  env,
  serverHint: SERVER_HINT,
  leaseMs: LEASE_MS,

  publishRaw: async (queue, body) => {
    await raw.xadd(queueKeys(PREFIX, queue).main, '*', 'envelope', body);
  },
  restartServer,
  durableAcrossRestart,
});
