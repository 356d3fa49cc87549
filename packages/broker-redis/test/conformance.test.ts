import { afterAll } from 'vitest';
import { runRedisConformance } from './redis-brokers';
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

for (const broker of ['redis-list', 'redis-reliable', 'redis-streams'] as const) {
  runRedisConformance(broker, {
    env,
    raw,
    prefix: PREFIX,
    leaseMs: LEASE_MS,
    serverHint: SERVER_HINT,
    restartServer,
    durableAcrossRestart,
  });
}
