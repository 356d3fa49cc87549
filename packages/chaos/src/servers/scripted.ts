/**
 * kafka and sqs: a server of the run's own, started by the project's services script
 * (scripts/services/kafka/kafka.sh, scripts/services/elasticmq/elasticmq.sh) with a private
 * POLYQUEUE_CACHE, ports and data dir; the jars are the cached ones. Restart: stop + start.
 *
 * - kafka: a single-node Kafka (KRaft).
 * - sqs: an ElasticMQ with ELASTICMQ_PERSIST=1 (H2 file), so a restart keeps the queues and
 *   messages as SQS would.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '@polyqueue/testkit/net';
import type { BrokerContext, BrokerServer } from './types';

const run = promisify(execFile);

const CACHE = process.env.POLYQUEUE_CACHE ?? join(homedir(), '.cache', 'polyqueue');

/** A private POLYQUEUE_CACHE for a services script: the run's own pid file, config and logs; the cached jars. */
function privateCache(ctx: BrokerContext, jarsDir: string, service: string): string {
  const cache = join(ctx.dir, `${service}-cache`);
  mkdirSync(cache, { recursive: true });
  const jars = join(CACHE, jarsDir);
  if (!existsSync(join(jars, 'lib', '.complete'))) {
    throw new Error(
      `${service}: no cached jars in ${jars}; run scripts/services/start-all.sh once to fetch them`,
    );
  }
  symlinkSync(jars, join(cache, jarsDir));
  return cache;
}

interface ScriptSpec {
  /** The service's name in the services scripts (its folder, its cache dir). */
  service: 'kafka' | 'elasticmq';
  /** The cached jars' folder under POLYQUEUE_CACHE. */
  jarsDir: string;
  /** The script's variables for the run's ports and data dir. */
  env: Record<string, string>;
  /** Bound of `wait` and of `stop` (ms); `start` (which may resolve jars) gets 300 s. */
  waitMs: number;
  stopMs: number;
}

/** The services script run with the run's own cache, ports and data dir; started and ready. */
async function startScripted(ctx: BrokerContext, spec: ScriptSpec) {
  const script = join(ctx.repoRoot, `scripts/services/${spec.service}/${spec.service}.sh`);
  const env = { ...process.env, POLYQUEUE_CACHE: privateCache(ctx, spec.jarsDir, spec.service), ...spec.env };
  const sh = (command: string, timeout: number) => run(script, [command], { env, timeout });
  const startAndWait = async () => {
    await sh('start', 300_000);
    await sh('wait', spec.waitMs);
  };
  await startAndWait();
  return {
    restart: async () => {
      try {
        await sh('stop', spec.stopMs);
      } finally {
        await startAndWait();
      }
    },
    teardown: async () => {
      await sh('stop', spec.stopMs).catch((error) => ctx.say(`${spec.service} stop: ${error}`));
    },
    emergencyStop: () => {
      try {
        execFileSync(script, ['stop'], { env, timeout: 60_000, stdio: 'ignore' });
      } catch {
        // nothing more to do on exit
      }
    },
  };
}

export async function kafka(ctx: BrokerContext): Promise<BrokerServer> {
  const port = await freePort();
  let controller = await freePort();
  while (controller === port) controller = await freePort();
  ctx.say(`starting a Kafka of this run's own on 127.0.0.1:${port}`);
  const server = await startScripted(ctx, {
    service: 'kafka',
    jarsDir: 'kafka-3.9.1',
    env: {
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controller),
      KAFKA_DATA_DIR: join(ctx.dir, 'kafka-data'),
    },
    waitMs: 150_000,
    stopMs: 120_000,
  });
  // A session timeout is how long a dead member keeps its partitions: Kafka's lease.
  const sessionMs = Math.max(6_000, ctx.leaseMs);
  return {
    name: 'kafka',
    atLeastOnce: true,
    leaseMs: sessionMs,
    leaseIs: 'KAFKA_SESSION_TIMEOUT_MS (the broker minimum is 6 s) = JOB_LEASE_MS, the idempotency claim',
    env: {
      // The dead worker's idempotency claim outlives the session unless leased alike (default 30 s).
      JOB_LEASE_MS: String(sessionMs),
      BROKER: 'kafka',
      KAFKA_BROKERS: `127.0.0.1:${port}`,
      POLYQUEUE_PREFIX: ctx.prefix,
      KAFKA_SESSION_TIMEOUT_MS: String(sessionMs),
      KAFKA_HEARTBEAT_INTERVAL_MS: String(Math.floor(sessionMs / 6)),
      KAFKA_REBALANCE_TIMEOUT_MS: String(2 * sessionMs),
    },
    ...server,
    notes: [`own single-node Kafka :${port}`],
  };
}

export async function sqs(ctx: BrokerContext): Promise<BrokerServer> {
  const port = await freePort();
  ctx.say(`starting an ElasticMQ of this run's own (persistent) on 127.0.0.1:${port}`);
  const server = await startScripted(ctx, {
    service: 'elasticmq',
    jarsDir: 'elasticmq-1.6.16',
    env: {
      ELASTICMQ_PORT: String(port),
      ELASTICMQ_PERSIST: '1',
      ELASTICMQ_DATA_DIR: join(ctx.dir, 'elasticmq-data'),
    },
    waitMs: 120_000,
    stopMs: 60_000,
  });
  const visibilityS = Math.max(1, Math.round(ctx.leaseMs / 1000));
  return {
    name: 'sqs',
    atLeastOnce: true,
    leaseMs: visibilityS * 1000,
    leaseIs: 'SQS_VISIBILITY_TIMEOUT_S',
    env: {
      BROKER: 'sqs',
      SQS_ENDPOINT: `http://127.0.0.1:${port}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'chaos',
      AWS_SECRET_ACCESS_KEY: 'chaos',
      POLYQUEUE_PREFIX: ctx.prefix,
      SQS_VISIBILITY_TIMEOUT_S: String(visibilityS),
    },
    ...server,
    notes: [`own ElasticMQ :${port} with ELASTICMQ_PERSIST=1 (H2)`],
  };
}
