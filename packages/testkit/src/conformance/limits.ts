/**
 * Rate and concurrency limits (QueueLimits + core's limited consume) across two workers, each
 * on its own connection and its own client of the limits store, as two processes would be: a
 * rate of N/s holds over the whole run and in every one-second window within 10 %, and a
 * concurrency of C (and C per key) is never exceeded. The store is the driver test's
 * `createLimits` (a real state store) or, without one, a MemoryQueueLimits both workers share;
 * each store's admission logic has its own contract suite. What this checks is that every
 * driver's consume() hands its deliveries through the gate and the workers obey it together.
 */
import {
  type Broker,
  createEnvelope,
  type Envelope,
  limited,
  MemoryIdempotencyStore,
  MemoryQueueLimits,
  type QueueLimits,
} from '@polyqueue/core';
import { expect } from 'vitest';
import { eventually } from '../spy';
import { type Harness, job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

/** Two clients of the limits store: the driver's real store, or one memory store shared. */
async function limitsClients(h: Harness): Promise<{ clients: QueueLimits[]; close: () => Promise<void> }> {
  const create = h.options.createLimits;
  if (!create) {
    const shared = new MemoryQueueLimits();
    return { clients: [shared, shared], close: async () => {} };
  }
  const clients = [await create(), await create()];
  return { clients, close: async () => void (await Promise.all(clients.map((c) => c.close()))) };
}

/** Starts two workers on the queue, one per connection and limits client; resolves once both are ready. */
async function twoLimitedWorkers(
  h: Harness,
  queue: string,
  clients: QueueLimits[],
  handle: (envelope: Envelope) => Promise<void>,
  concurrency: number,
): Promise<void> {
  const handlers = {
    test_job: { handle: (_payload: unknown, context: { envelope: Envelope }) => handle(context.envelope) },
  };
  const idempotency = new MemoryIdempotencyStore();
  const second = await h.another();
  const gate = (b: Broker, limits: QueueLimits) => limited(b, { limits, pollMs: 100, leaseMs: h.leaseMs });
  const workers = [
    h.runWorker({ queue, handlers, idempotency, concurrency }, gate(h.broker, clients[0]!)),
    h.runWorker({ queue, handlers, idempotency, concurrency }, gate(second, clients[1]!)),
  ];
  await Promise.all(workers.map((w) => w.ready));
}

const RATE = 40;
const RATE_JOBS = 160;

export const rateLimitAcrossWorkers: Scenario = {
  name: `a rate limit of ${RATE}/s holds across 2 workers within 10 %, over the run and in every second`,
  timeoutMs: 120_000,
  async run(h) {
    const queue = uniqueQueueName('rated');
    const { clients, close } = await limitsClients(h);
    try {
      await clients[0]!.setLimits(queue, { ratePerSec: RATE });
      const starts: number[] = [];
      // Enough deliveries waiting at each worker that the limit, not a driver that fetches in
      // batches (SQS), sets the pace.
      await twoLimitedWorkers(
        h,
        queue,
        clients,
        async () => {
          starts.push(performance.now());
        },
        10,
      );
      await h.broker.publish(queue, messages(Array.from({ length: RATE_JOBS }, (_, i) => job({ i }))));
      await eventually(
        async () => starts.length,
        (n) => n >= RATE_JOBS,
        `all ${RATE_JOBS} jobs to start`,
        (RATE_JOBS / RATE) * 1000 + h.timeoutMs,
      );
      starts.sort((a, b) => a - b);
      const seconds = (starts.at(-1)! - starts[0]!) / 1000;
      const observed = (starts.length - 1) / seconds;
      let busiest = 0;
      for (let i = 0, j = 0; i < starts.length; i += 1) {
        while (j < starts.length && starts[j]! < starts[i]! + 1000) j += 1;
        busiest = Math.max(busiest, j - i);
      }
      console.info(
        `${h.options.broker}: ${starts.length} jobs at ${observed.toFixed(2)}/s (limit ${RATE}/s), busiest second ${busiest}`,
      );
      expect(observed, `jobs started per second over ${seconds.toFixed(2)} s`).toBeGreaterThanOrEqual(
        RATE * 0.9,
      );
      expect(observed, `jobs started per second over ${seconds.toFixed(2)} s`).toBeLessThanOrEqual(
        RATE * 1.1,
      );
      expect(busiest, 'jobs started in the busiest one-second window').toBeLessThanOrEqual(RATE * 1.1);
    } finally {
      await h.stopConsumers();
      await close();
    }
  },
};

const CONCURRENCY = 3;
const PER_KEY = 1;
const KEYS = ['tenant-a', 'tenant-b', 'tenant-c', 'tenant-d'];

export const concurrencyLimitAcrossWorkers: Scenario = {
  name: `a concurrency limit of ${CONCURRENCY} (${PER_KEY} per key) is never exceeded by 2 workers of 4 each`,
  timeoutMs: 120_000,
  async run(h) {
    const queue = uniqueQueueName('bounded');
    const { clients, close } = await limitsClients(h);
    try {
      await clients[0]!.setLimits(queue, { concurrency: CONCURRENCY, perKeyConcurrency: PER_KEY });
      let running = 0;
      let most = 0;
      const runningPerKey = new Map<string, number>();
      let mostPerKey = 0;
      const done: string[] = [];
      const handle = async (envelope: Envelope) => {
        const key = envelope.key ?? '';
        running += 1;
        runningPerKey.set(key, (runningPerKey.get(key) ?? 0) + 1);
        most = Math.max(most, running);
        mostPerKey = Math.max(mostPerKey, runningPerKey.get(key)!);
        // Hold the slot a while, as real work would, so the workers' jobs overlap.
        await new Promise((resolve) => setTimeout(resolve, 30));
        running -= 1;
        runningPerKey.set(key, runningPerKey.get(key)! - 1);
        done.push(envelope.id);
      };
      await twoLimitedWorkers(h, queue, clients, handle, 4);
      // Most jobs are the first tenant's: it must not take more than its slot.
      const envelopes = Array.from({ length: 24 }, (_, i) =>
        createEnvelope('test_job', { i }, { key: i % 2 === 0 ? KEYS[0]! : KEYS[i % KEYS.length]! }),
      );
      await h.broker.publish(queue, messages(envelopes));
      await eventually(
        async () => done.length,
        (n) => n >= envelopes.length,
        'every job to finish',
        h.timeoutMs * 2,
      );
      expect(most, 'jobs running at once, over both workers').toBeLessThanOrEqual(CONCURRENCY);
      expect(mostPerKey, 'jobs of one key running at once').toBeLessThanOrEqual(PER_KEY);
    } finally {
      await h.stopConsumers();
      await close();
    }
  },
};
