import { createBrokerFromEnv } from '@polyqueue/brokers';
import {
  type Broker,
  type BrokerAdmin,
  createEnvelope,
  createWorker,
  type IdempotencyStore,
  MemoryIdempotencyStore,
  type WorkerOptions,
} from '@polyqueue/core';
import { Countdown, type Latency, percentile, perSecond, type Rates } from './measure';

export interface RunOptions {
  env: Record<string, string | undefined>;
  jobs: number;
  concurrency: number;
  batch: number;
}

/** Publishes `jobs` no-op jobs in batches of `batch`; returns jobs/s until the last is accepted. */
async function publishJobs(broker: Broker, queue: string, options: RunOptions): Promise<number> {
  const envelopes = Array.from({ length: options.jobs }, (_, i) => createEnvelope('bench_job', { i }));
  const t0 = performance.now();
  for (let i = 0; i < envelopes.length; i += options.batch) {
    await broker.publish(
      queue,
      envelopes.slice(i, i + options.batch).map((envelope) => ({ envelope })),
    );
  }
  return perSecond(options.jobs, t0);
}

/**
 * polyqueue itself: publish through the driver in batches, then process through the worker
 * runtime (validation, idempotency claim in memory, no-op handler, ack) at the given concurrency.
 */
export async function frameworkRates(options: RunOptions): Promise<Rates> {
  const broker = await createBrokerFromEnv(options.env);
  const queue = `bench${Date.now().toString(36)}`;
  try {
    const enqueuePerSec = await publishJobs(broker, queue, options);

    const countdown = new Countdown(options.jobs);
    const processPerSec = await runWorker(broker, queue, options, countdown);
    return { enqueuePerSec, processPerSec };
  } finally {
    await drainQueue(broker, queue);
    await broker.close();
  }
}

/**
 * The driver alone, without the worker runtime: the same publish, then Broker.consume with a
 * handler that parses the body and acks, as the raw loops do. Separates what a driver costs
 * from what validation, idempotency and outcome hooks cost.
 */
export async function driverOnlyRates(options: RunOptions): Promise<Rates> {
  const broker = await createBrokerFromEnv(options.env);
  const queue = `benchd${Date.now().toString(36)}`;
  try {
    const enqueuePerSec = await publishJobs(broker, queue, options);
    const countdown = new Countdown(options.jobs);
    const controller = new AbortController();
    let t1 = performance.now();
    const running = broker.consume(
      queue,
      async (delivery) => {
        JSON.parse(delivery.body);
        await delivery.ack();
        countdown.tick();
      },
      {
        concurrency: options.concurrency,
        signal: controller.signal,
        onReady: () => {
          t1 = performance.now();
        },
      },
    );
    await countdown.finished;
    const processPerSec = perSecond(options.jobs, t1);
    controller.abort();
    await running;
    return { enqueuePerSec, processPerSec };
  } finally {
    await drainQueue(broker, queue);
    await broker.close();
  }
}

/** Enqueue-to-start latency: jobs published one at a time while a worker waits. */
export async function frameworkLatency(options: RunOptions, samples: number): Promise<Latency> {
  const broker = await createBrokerFromEnv(options.env);
  const queue = `lat${Date.now().toString(36)}`;
  const latencies: number[] = [];
  const controller = new AbortController();
  let next: (() => void) | undefined;
  const worker = benchWorker(broker, queue, options.concurrency, {
    bench_job: {
      handle: async (_p, ctx) => {
        latencies.push(Date.now() - Date.parse(ctx.envelope.createdAt));
        next?.();
      },
    },
  });
  let ready!: () => void;
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  const running = worker.run(controller.signal, ready);
  try {
    await isReady;
    for (let i = 0; i < samples; i++) {
      const started = new Promise<void>((r) => {
        next = r;
      });
      await broker.publish(queue, [{ envelope: createEnvelope('bench_job', { i }) }]);
      await started;
    }
  } finally {
    controller.abort();
    await running;
    await broker.close();
  }
  latencies.sort((a, b) => a - b);
  return { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

/** Where the runtime rows claim and mark done: memory, unless --state names a real store. */
let sharedIdempotency: IdempotencyStore | undefined;

/**
 * --state URL: the runtime rows pay what a deployment pays, a claim and a done mark per job in
 * that state store (batched by the runtime where the store can), instead of a map in memory.
 */
export function claimIn(store: IdempotencyStore): void {
  sharedIdempotency = store;
}

/**
 * The worker runtime as every bench run uses it: `handlers` on `queue` at the run's concurrency,
 * idempotency claims in memory (no store round trip in the measurement) unless claimIn() named
 * a real store.
 */
export function benchWorker(
  broker: Broker,
  queue: string,
  concurrency: number,
  handlers: WorkerOptions['handlers'],
  onOutcome?: WorkerOptions['onOutcome'],
) {
  return createWorker({
    broker,
    queue,
    idempotency: sharedIdempotency ?? new MemoryIdempotencyStore(),
    concurrency,
    handlers,
    ...(onOutcome && { onOutcome }),
  });
}

async function runWorker(
  broker: Broker,
  queue: string,
  options: RunOptions,
  countdown: Countdown,
): Promise<number> {
  const controller = new AbortController();
  const worker = benchWorker(
    broker,
    queue,
    options.concurrency,
    { bench_job: { handle: async () => {} } },
    // Counted once acked, as the baselines count: the runtime reports success after the ack.
    (event) => {
      if (event.outcome === 'succeeded') countdown.tick();
    },
  );
  // Timed from the consumer's attach (queue declared, group joined), the same moment the
  // baselines start their clocks: a Kafka group join alone takes seconds.
  let t0 = performance.now();
  const running = worker.run(controller.signal, () => {
    t0 = performance.now();
  });
  await countdown.finished;
  const rate = perSecond(options.jobs, t0);
  controller.abort();
  await running;
  return rate;
}

async function drainQueue(broker: BrokerAdmin, queue: string): Promise<void> {
  await broker
    .deadLetters(queue)
    .purge()
    .catch(() => 0);
}
