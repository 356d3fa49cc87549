/**
 * Cancellation in the worker runtime: a job whose record says `cancelled` is acked without
 * running, and a running job's signal fires once its record turns `cancelled`. The first two on
 * the memory broker; the last on sqlite, the default broker, with a delayed job.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv, createStateStore } from '@polyqueue/brokers';
import {
  createEnvelope,
  createWorker,
  type Envelope,
  type JobStateStore,
  type OutcomeEvent,
} from '@polyqueue/core';
import { deferred, eventually } from '@polyqueue/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createJobRecorder } from '../src/job-recorder';
import { MemoryStateStore } from '../src/memory-state-store';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function recordedJob(state: JobStateStore, id: string, queue: string): Promise<Envelope> {
  const at = new Date().toISOString();
  await state.createJob({
    id,
    type: 'work',
    queue,
    status: 'queued',
    attempts: 0,
    createdAt: at,
    updatedAt: at,
  });
  return createEnvelope('work', { n: 1 }, { id });
}

/** What the recorder is told, awaitable: resolves once a job reaches an outcome. */
function outcomes() {
  const seen: OutcomeEvent[] = [];
  const waiters: { test: (e: OutcomeEvent) => boolean; resolve: (e: OutcomeEvent) => void }[] = [];
  return {
    seen,
    push(event: OutcomeEvent) {
      seen.push(event);
      for (const w of waiters.filter((w) => w.test(event))) w.resolve(event);
    },
    of(jobId: string, outcome: OutcomeEvent['outcome']): Promise<OutcomeEvent> {
      const test = (e: OutcomeEvent) => e.envelope?.id === jobId && e.outcome === outcome;
      const found = seen.find(test);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${outcome} for ${jobId} in 20 s`)), 20_000);
        waiters.push({
          test,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
  };
}

async function startWorker(
  env: Record<string, string>,
  state: JobStateStore,
  queue: string,
  handle: (payload: unknown, context: { envelope: Envelope; signal: AbortSignal }) => Promise<unknown>,
) {
  const broker = await createBrokerFromEnv(env);
  const events = outcomes();
  const record = createJobRecorder({ state, broker });
  const stop = new AbortController();
  const ready = deferred();
  const worker = createWorker({
    broker,
    queue,
    handlers: { work: { handle } },
    idempotency: new MemoryStateStore(),
    jobs: state,
    cancelCheckMs: 50,
    onOutcome: async (event) => {
      const answer = await record(event);
      events.push(event);
      return answer;
    },
  });
  const running = worker.run(stop.signal, () => ready.resolve());
  // A consumer that cannot start rejects run() before it is ready.
  await Promise.race([ready.promise, running]);
  return {
    broker,
    events,
    async close() {
      stop.abort();
      await running;
      await broker.close();
    },
  };
}

describe('cancellation in the worker runtime', () => {
  it('acks a queued job cancelled before it is fetched, without running it', async () => {
    const state = new MemoryStateStore();
    const ran: string[] = [];
    const w = await startWorker({ BROKER: 'memory' }, state, 'cancel_queued', async (_p, c) => {
      ran.push(c.envelope.id);
    });
    try {
      const doomed = await recordedJob(state, 'doomed', 'cancel_queued');
      expect(await state.updateJob('doomed', { status: 'cancelled' }, 'queued')).toBe(true);
      const kept = await recordedJob(state, 'kept', 'cancel_queued');
      await w.broker.publish('cancel_queued', [{ envelope: doomed }, { envelope: kept }]);
      await w.events.of('doomed', 'cancelled');
      await w.events.of('kept', 'succeeded');
      expect(ran).toEqual(['kept']);
      expect((await state.getJob('doomed'))?.status).toBe('cancelled');
    } finally {
      await w.close();
    }
  });

  it("aborts a running job's signal when its record turns cancelled; it ends cancelled, not retried", async () => {
    const state = new MemoryStateStore();
    const started = deferred();
    let reason: unknown;
    const w = await startWorker({ BROKER: 'memory' }, state, 'cancel_running', async (_p, c) => {
      started.resolve();
      await new Promise<void>((resolve) =>
        c.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
      reason = c.signal.reason;
      throw c.signal.reason;
    });
    try {
      const job = await recordedJob(state, 'long', 'cancel_running');
      await w.broker.publish('cancel_running', [{ envelope: job }]);
      await started.promise;
      await w.events.of('long', 'processing');
      // What DELETE /v1/jobs/:id does to a processing job.
      expect(await state.updateJob('long', { status: 'cancelled' }, 'processing')).toBe(true);
      await w.events.of('long', 'cancelled');
      expect((reason as Error).name).toBe('JobCancelledError');
      expect((await state.getJob('long'))?.status).toBe('cancelled');
      expect(w.events.seen.filter((e) => e.envelope?.id === 'long').map((e) => e.outcome)).toEqual([
        'processing',
        'cancelled',
      ]);
    } finally {
      await w.close();
    }
  });

  it('on sqlite, a delayed job cancelled before it is due never runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'polyqueue-cancel-'));
    dirs.push(dir);
    const env = { BROKER: 'sqlite', SQLITE_PATH: join(dir, 'queue.db'), SQLITE_POLL_MAX_MS: '50' };
    const state = await createStateStore(`sqlite:${join(dir, 'state.db')}`);
    const ran: string[] = [];
    const w = await startWorker(env, state, 'cancel_delayed', async (_p, c) => {
      ran.push(c.envelope.id);
    });
    try {
      const delayed = await recordedJob(state, 'delayed', 'cancel_delayed');
      await w.broker.publish('cancel_delayed', [{ envelope: delayed, delayMs: 500 }]);
      expect(await state.updateJob('delayed', { status: 'cancelled' }, 'queued')).toBe(true);
      // The worker receives it once due and acks it unrun: that event is the proof it came due.
      await w.events.of('delayed', 'cancelled');
      expect(ran).toEqual([]);
      expect((await state.getJob('delayed'))?.status).toBe('cancelled');
      // sqlite's ack is durable 'eventually' (its DELETE rides the next claim, within 20 ms):
      // the row leaves in-flight shortly after the ack, not with it.
      const after = await eventually(
        () => w.broker.stats('cancel_delayed'),
        (s) => s.ready === 0 && s.inFlight === 0 && s.delayed === 0,
        'the cancelled job gone from the queue',
      );
      expect(after).toMatchObject({ ready: 0, inFlight: 0, delayed: 0 });
    } finally {
      await w.close();
      await state.close();
    }
  });
});
