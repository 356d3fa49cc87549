/**
 * What the worker runtime itself costs per job, without a broker's I/O or noise: deliveries of
 * ready-made bodies are handed to a handler from memory, `concurrency` at a time, as a driver
 * hands them out. Run with `npm run bench -- --scenario runtime [--jobs N] [--concurrency C]`.
 *
 * The feeder is not a broker (nothing is queued, acks are no-ops); it only gives the runtime
 * the Broker.consume contract so its per-job path runs as it does behind a real driver.
 */
import {
  type Broker,
  CLAIMED,
  type ClaimResult,
  createEnvelope,
  createWorker,
  type Delivery,
  type DeliveryHandler,
  encodeEnvelope,
  type IdempotencyStore,
  MemoryIdempotencyStore,
} from '@polyqueue/core';

/** A delivery whose outcomes do nothing; its attempt is the envelope's, as on Kafka. */
class ReadyDelivery implements Delivery {
  readonly attempt = 1;
  readonly attemptInEnvelope = true;
  constructor(
    readonly messageId: string,
    readonly body: string,
  ) {}
  async ack(): Promise<void> {}
  async retry(): Promise<void> {}
  async deadLetter(): Promise<void> {}
  async extend(): Promise<void> {}
}

/** Hands every body to the handler, keeping `concurrency` in flight; resolves when all are done. */
function feed(bodies: readonly string[], concurrency: number, handler: DeliveryHandler): Promise<void> {
  return new Promise((resolve) => {
    let next = 0;
    let done = 0;
    const pump = () => {
      while (next - done < concurrency && next < bodies.length) {
        const i = next++;
        void handler(new ReadyDelivery(`m${i}`, bodies[i]!)).then(() => {
          if (++done === bodies.length) resolve();
          else pump();
        });
      }
    };
    pump();
  });
}

function feedingBroker(bodies: readonly string[]): Broker {
  return {
    capabilities: { leaseExtension: false },
    consume: async (_queue, handler, options) => {
      options.onReady?.();
      await feed(bodies, options.concurrency, handler);
    },
  } as Broker;
}

/** Grants every claim and keeps nothing: the runtime's path without a store's own cost. */
const noStore: IdempotencyStore = {
  claim: (): ClaimResult => CLAIMED,
  renew: () => true,
  complete: () => true,
  release: () => {},
};

export interface RuntimeCostOptions {
  jobs: number;
  concurrency: number;
}

export interface RuntimeContender {
  label: string;
  /** Microseconds per job for one pass over fresh bodies. */
  run(options: RuntimeCostOptions): Promise<number>;
}

function bodies(jobs: number): string[] {
  return Array.from({ length: jobs }, (_, i) => encodeEnvelope(createEnvelope('bench_job', { i })));
}

async function timed(jobs: number, work: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await work();
  return ((performance.now() - t0) * 1000) / jobs;
}

function throughRuntime(options: RuntimeCostOptions, idempotency: IdempotencyStore): Promise<number> {
  const ready = bodies(options.jobs);
  const worker = createWorker({
    broker: feedingBroker(ready),
    queue: 'bench',
    idempotency,
    concurrency: options.concurrency,
    handlers: { bench_job: { handle: async () => {} } },
    // A synchronous hook, as the bench's queue scenario counts with one.
    onOutcome: () => {},
  });
  return timed(options.jobs, () => worker.run(new AbortController().signal));
}

export const runtimeContenders: RuntimeContender[] = [
  {
    label: 'JSON.parse + ack (what a raw loop does)',
    run: (options) => {
      const ready = bodies(options.jobs);
      return timed(options.jobs, () =>
        feed(ready, options.concurrency, async (delivery) => {
          JSON.parse(delivery.body);
          await delivery.ack();
        }),
      );
    },
  },
  { label: 'worker runtime, claims always granted', run: (o) => throughRuntime(o, noStore) },
  {
    label: 'worker runtime, MemoryIdempotencyStore',
    run: (o) => throughRuntime(o, new MemoryIdempotencyStore()),
  },
];
