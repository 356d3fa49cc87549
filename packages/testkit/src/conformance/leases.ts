/**
 * Leases: extend() by hand, and the runtime heartbeat keeping a three-lease job with its worker.
 */
import { MemoryIdempotencyStore } from '@polyqueue/core';
import { expect } from 'vitest';
import { deferred, HandlerSpy } from '../spy';
import { EMPTY, job, messages, recordingDeliveries, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const extendLease: Scenario = {
  name: 'renews a lease with extend() so a long job is not handed to another consumer',
  applies: (c) => c.leaseExtension,
  timeoutMs: 120_000,
  async run(h) {
    const { broker, timeoutMs, leaseMs } = h;
    const queue = uniqueQueueName('extend');
    const second = await h.another();
    const spy = new HandlerSpy(timeoutMs + leaseMs * 3);
    const release = deferred();
    const holder = h.consume(
      broker,
      queue,
      spy.handler('holder', async (d) => {
        const timer = setInterval(() => void d.extend(leaseMs), Math.max(100, leaseMs / 4));
        await release.promise;
        clearInterval(timer);
        await d.ack();
      }),
      1,
    );
    const other = h.consume(second, queue, spy.handler('other'), 1);
    await Promise.all([holder.ready, other.ready]);
    const envelope = job();
    await broker.publish(queue, messages([envelope]));
    await spy.waitFor(() => spy.received.length === 1, 'the first delivery');
    const marker = job({ marker: true });
    // Two full leases pass while the holder extends; then a marker proves the other consumer is live.
    await new Promise((r) => setTimeout(r, leaseMs * 2 + 500));
    await broker.publish(queue, messages([marker]));
    await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
    release.resolve();
    await h.statsEventually(queue, EMPTY, 'after the long job is acked');
    expect(spy.count(envelope.id)).toBe(1);
  },
};

export const heartbeatThroughRuntime: Scenario = {
  name: 'heartbeats a job that runs three leases through the runtime: handed out once, no copy left',
  applies: (c) => c.leaseExtension,
  timeoutMs: 120_000,
  async run(h) {
    const { broker, leaseMs } = h;
    const queue = uniqueQueueName('beat');
    const handedOut: string[] = [];
    let calls = 0;
    const finished = deferred();
    const worker = h.runWorker(
      {
        queue,
        idempotency: new MemoryIdempotencyStore(),
        // A free slot, so a copy handed out while the job runs would reach this worker too.
        concurrency: 2,
        // The lease the driver's env sets; the runtime renews the delivery every leaseMs / 3.
        leaseMs,
        handlers: {
          test_job: {
            handle: async () => {
              calls += 1;
              // The job's work: three full leases.
              await new Promise((resolve) => setTimeout(resolve, leaseMs * 3));
              finished.resolve();
            },
          },
        },
      },
      recordingDeliveries(broker, handedOut),
    );
    await worker.ready;
    const envelope = job({ long: true });
    await broker.publish(queue, messages([envelope]));
    await finished.promise;
    await h.statsEventually(queue, { ready: 0, inFlight: 0, delayed: 0 }, 'after the long job');
    expect(calls).toBe(1);
    expect(handedOut, 'deliveries of the long job').toHaveLength(1);
  },
};
