/**
 * Limits in worker processes (runWorkerProcess), with the limits in a real state store
 * (STATE_URL): two workers of one queue share a concurrency limit, obey a change made while
 * they run within about a second, and show it in /metrics. On sqlite (broker and state file)
 * and on RabbitMQ with the limits in Redis, as two hosts would share them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv, createQueueLimits } from '@polyqueue/brokers';
import { createEnvelope, silentLogger } from '@polyqueue/core';
import { deferred, eventually } from '@polyqueue/testkit';
import { freePort } from '@polyqueue/testkit/net';
import { afterAll, describe, expect, it } from 'vitest';
import { workerEnvSchema } from '../src/config';
import { runWorkerProcess } from '../src/run-worker';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const setups: [string, { STATE_URL: string } & Record<string, string>, string][] = [
  [
    'sqlite, limits in the state file',
    { BROKER: 'sqlite', SQLITE_PATH: join(dir, 'queues.db'), STATE_URL: `sqlite:${join(dir, 'state.db')}` },
    `the SQLite files under ${dir}`,
  ],
  [
    'rabbitmq, limits in redis',
    { BROKER: 'rabbitmq', AMQP_URL, STATE_URL: REDIS_URL },
    `RabbitMQ at ${AMQP_URL} and Redis at ${REDIS_URL} (docker compose up -d rabbitmq redis)`,
  ],
];

describe.each(setups)('limits in worker processes: %s', (_name, base, servers) => {
  it('holds two workers to a shared concurrency, obeys a change at run time, and shows it in /metrics', async () => {
    const queue = `limits${Date.now().toString(36)}`;
    const env = { ...base, LOG_LEVEL: 'silent', JOB_LEASE_MS: '3000' };
    let limits: Awaited<ReturnType<typeof createQueueLimits>>;
    let producer: Awaited<ReturnType<typeof createBrokerFromEnv>>;
    try {
      limits = await createQueueLimits(env.STATE_URL, env);
      producer = await createBrokerFromEnv(env);
    } catch (error) {
      throw new Error(`cannot reach ${servers}: ${(error as Error).message}`);
    }
    await limits.setLimits(queue, { concurrency: 1 });
    let running = 0;
    let most = 0;
    const done: string[] = [];
    let gate = deferred();
    const handlers = {
      test_job: {
        handle: async (_payload: unknown, context: { envelope: { id: string } }) => {
          running += 1;
          most = Math.max(most, running);
          await gate.promise;
          running -= 1;
          done.push(context.envelope.id);
        },
      },
    };
    const port = await freePort();
    const stop = new AbortController();
    const worker = (metricsPort: number) =>
      runWorkerProcess({
        name: 'limits-worker',
        queue,
        env,
        config: workerEnvSchema.parse({ ...env, METRICS_PORT: String(metricsPort), WORKER_CONCURRENCY: '4' }),
        setup: async () => ({ handlers }),
        signal: stop.signal,
        logger: silentLogger(),
      });
    const workers = [worker(port), worker(0)];
    const wait = <T>(read: () => T | Promise<T>, check: (v: T) => boolean, what: string) =>
      eventually(async () => read(), check, what, 20_000);
    try {
      const jobs = Array.from({ length: 8 }, (_, i) => createEnvelope('test_job', { i }));
      await producer.publish(
        queue,
        jobs.map((envelope) => ({ envelope })),
      );
      // Eight jobs, two workers of four: one runs, the rest wait for the slot.
      await wait(
        () => running,
        (n) => n === 1,
        'one job to run',
      );
      const gauge = await wait(
        async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
        (text) => /polyqueue_queue_concurrency_limit\{[^}]*queue="[^"]+"[^}]*\} 1$/m.test(text),
        'the concurrency limit in /metrics',
      );
      expect(gauge).toMatch(new RegExp(`polyqueue_queue_concurrency_limit\\{[^}]*queue="${queue}"`));
      expect(running).toBe(1);

      // Raised while they run: within about a second, three run at once over both workers.
      await limits.setLimits(queue, { concurrency: 3 });
      await wait(
        () => running,
        (n) => n === 3,
        'three jobs to run at once after the change',
      );
      gate.resolve();
      gate = deferred();
      gate.resolve();
      await wait(
        () => done.length,
        (n) => n === jobs.length,
        'every job to finish',
      );
      expect(most, 'never more than the limit of the moment').toBe(3);
    } finally {
      gate.resolve();
      stop.abort();
      await Promise.allSettled(workers);
      await limits.setLimits(queue, {});
      await limits.close();
      await producer.close();
    }
  }, 60_000);
});
