/**
 * Pause and resume in a worker process (runWorkerProcess): the flags in the state store
 * (STATE_URL), a paused queue's worker fetching nothing while another queue's worker goes on,
 * the job in flight at the pause finishing, the worker staying ready and saying so in its log
 * and its /metrics, and a resume bringing it back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv, createQueueControls } from '@polyqueue/brokers';
import { createEnvelope, type Logger, MemoryQueueControls } from '@polyqueue/core';
import { eventually, gatedJobHandlers, runQueueControlsSuite } from '@polyqueue/testkit';
import { freePort } from '@polyqueue/testkit/net';
import { afterAll, describe, expect, it } from 'vitest';
import { workerEnvSchema } from '../src/config';
import { runWorkerProcess } from '../src/run-worker';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-pause-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// One instance stands for the one process that sees it: every "client" is the same flags.
const shared = new MemoryQueueControls();
runQueueControlsSuite('memory', async () => ({
  paused: () => shared.paused(),
  pause: (q) => shared.pause(q),
  resume: (q) => shared.resume(q),
  close: async () => {},
}));

/** A logger that keeps every line's message, for "says paused in its logs". */
function recordingLogger(): { logger: Logger; messages: string[] } {
  const messages: string[] = [];
  const keep = (first: unknown, second?: unknown) =>
    void messages.push(String(typeof first === 'string' ? first : (second ?? '')));
  const logger = {
    trace: keep,
    debug: keep,
    info: keep,
    warn: keep,
    error: keep,
    fatal: keep,
    child: () => logger,
  } as unknown as Logger;
  return { logger, messages };
}

describe('pause and resume in a worker process', () => {
  it('stops fetching a paused queue within the poll, lets its job in flight finish, keeps other queues and /readyz going, and resumes', async () => {
    const env = {
      BROKER: 'sqlite',
      SQLITE_PATH: join(dir, 'queues.db'),
      STATE_URL: `sqlite:${join(dir, 'state.db')}`,
      LOG_LEVEL: 'silent',
    };
    const port = await freePort();
    const controls = await createQueueControls(env.STATE_URL, env);
    const producer = await createBrokerFromEnv(env);
    const stop = new AbortController();
    const { handlers, started, ran, release } = gatedJobHandlers();
    const email = recordingLogger();
    const worker = (queue: string, logger: Logger, metricsPort: number) =>
      runWorkerProcess({
        name: `${queue}-worker`,
        queue,
        env,
        config: workerEnvSchema.parse({ ...env, METRICS_PORT: String(metricsPort) }),
        setup: async () => ({ handlers }),
        signal: stop.signal,
        logger,
      });
    const workers = [worker('email', email.logger, port), worker('image', recordingLogger().logger, 0)];
    const wait = <T>(read: () => T | Promise<T>, check: (v: T) => boolean, what: string) =>
      eventually(async () => read(), check, what, 20_000);
    const said = (text: string) => () => email.messages.filter((m) => m.startsWith(text)).length;
    const scrape = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: response.status, text: await response.text() };
    };
    const pausedGauge = (text: string) =>
      /polyqueue_queue_paused\{[^}]*queue="email"[^}]*\} (\d)/.exec(text)?.[1];

    try {
      await wait(said('worker ready'), (n) => n === 1, 'the email worker to be ready');
      const slow = createEnvelope('test_job', { slow: true });
      await producer.publish('email', [{ envelope: slow }]);
      await wait(() => started.includes(slow.id), Boolean, 'the slow job to start');

      await controls.pause('email');
      await wait(said('queue paused: stopping the consumer'), (n) => n === 1, 'the worker to see the pause');
      expect(ran, 'the job in flight is not cut short').toEqual([]);
      release.resolve();
      await wait(said('queue paused: not fetching'), (n) => n === 1, 'the consumer to drain and stop');
      expect(ran).toEqual([slow.id]);

      expect((await scrape('/readyz')).status, 'a paused worker is ready').toBe(200);
      expect(pausedGauge((await scrape('/metrics')).text)).toBe('1');

      const held = createEnvelope('test_job', { held: true });
      const sentinel = createEnvelope('test_job', { sentinel: true });
      await producer.publish('email', [{ envelope: held }]);
      await producer.publish('image', [{ envelope: sentinel }]);
      await wait(() => ran.includes(sentinel.id), Boolean, 'the other queue to go on');
      expect(started).not.toContain(held.id);

      await controls.resume('email');
      await wait(() => ran.includes(held.id), Boolean, 'the held job to run after the resume');
      expect(said('queue resumed')()).toBe(1);
      expect(pausedGauge((await scrape('/metrics')).text)).toBe('0');
    } finally {
      release.resolve();
      stop.abort();
      await Promise.allSettled(workers);
      await producer.close();
      await controls.close();
    }
    await Promise.all(workers);
  }, 60_000);
});
