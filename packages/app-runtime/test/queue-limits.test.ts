/**
 * The limit gate of core (limited()) on a scripted broker: a waiting delivery keeps its lease
 * and goes back to the queue, never run, when the consumer stops; a running job's slot is
 * renewed and released; a queue without limits is not gated at all. Plus the memory store's
 * contract. The gate across real brokers and stores: the conformance suite's limit scenarios.
 */
import {
  type Broker,
  type Capabilities,
  type ConsumeOptions,
  type Delivery,
  type DeliveryHandler,
  limited,
  MemoryQueueLimits,
  type QueueLimits,
} from '@polyqueue/core';
import { deferred, eventually, runQueueLimitsSuite } from '@polyqueue/testkit';
import { describe, expect, it } from 'vitest';

// One instance stands for the one process that sees it: every "client" is the same store.
const shared = new MemoryQueueLimits();
runQueueLimitsSuite('memory', async () => ({
  limits: () => shared.limits(),
  setLimits: (q, l) => shared.setLimits(q, l),
  admit: (q, r) => shared.admit(q, r),
  renew: (q, h, ms) => shared.renew(q, h, ms),
  release: (q, h) => shared.release(q, h),
  close: async () => {},
}));

interface ScriptedDelivery extends Delivery {
  outcomes: string[];
}

function scriptedDelivery(id: string, body = '{}'): ScriptedDelivery {
  const outcomes: string[] = [];
  return {
    messageId: id,
    body,
    attempt: 1,
    outcomes,
    ack: async () => void outcomes.push('ack'),
    retry: async (ms) => void outcomes.push(`retry ${ms}`),
    deadLetter: async () => void outcomes.push('dead'),
    extend: async (ms) => void outcomes.push(`extend ${ms}`),
  };
}

/** A broker whose consume() hands out the given deliveries at once, then waits for the stop. */
function scriptedBroker(deliveries: Delivery[]): Broker {
  return {
    name: 'scripted',
    capabilities: { leaseExtension: true } as Capabilities,
    leaseMs: 300,
    publish: async () => {},
    async consume(_queue: string, handler: DeliveryHandler, options: ConsumeOptions) {
      options.onReady?.();
      const running = deliveries.map((d) => handler(d));
      await new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve()));
      await Promise.all(running);
    },
    close: async () => {},
  };
}

function counting(store: QueueLimits) {
  const calls = { admit: 0, renew: 0, release: 0 };
  const counted: QueueLimits = {
    limits: () => store.limits(),
    setLimits: (q, l) => store.setLimits(q, l),
    admit: (q, r) => {
      calls.admit += 1;
      return store.admit(q, r);
    },
    renew: (q, h, ms) => {
      calls.renew += 1;
      return store.renew(q, h, ms);
    },
    release: (q, h) => {
      calls.release += 1;
      return store.release(q, h);
    },
    close: () => store.close(),
  };
  return { counted, calls };
}

describe('the limit gate', () => {
  it('keeps a waiting delivery leased and hands it back unrun when the consumer stops', async () => {
    const store = new MemoryQueueLimits();
    await store.setLimits('q', { concurrency: 1 });
    const release = deferred();
    const ran: string[] = [];
    const first = scriptedDelivery('first');
    const second = scriptedDelivery('second');
    const stop = new AbortController();
    const consuming = limited(scriptedBroker([first, second]), { limits: store, pollMs: 50 }).consume(
      'q',
      async (d) => {
        ran.push(d.messageId);
        if (d.messageId === 'first') await release.promise;
      },
      { concurrency: 2, signal: stop.signal },
    );
    await eventually(
      async () => second.outcomes.filter((o) => o === 'extend 300').length,
      (n) => n >= 2,
      'the waiting delivery to be extended twice',
    );
    expect(ran).toEqual(['first']);
    stop.abort();
    await eventually(
      async () => second.outcomes,
      (o) => o.includes('retry 0'),
      'the waiting delivery to go back',
    );
    release.resolve();
    await consuming;
    expect(ran, 'the waiting job never ran').toEqual(['first']);
    expect((await store.admit('q', { holder: 'next', leaseMs: 1000 })).granted, 'the slot was released').toBe(
      true,
    );
  });

  it('renews a running job’s slot and releases it when the handler ends', async () => {
    const { counted, calls } = counting(new MemoryQueueLimits());
    await counted.setLimits('q', { concurrency: 2 });
    const release = deferred();
    const stop = new AbortController();
    const consuming = limited(scriptedBroker([scriptedDelivery('a')]), {
      limits: counted,
      pollMs: 20,
    }).consume('q', () => release.promise, { concurrency: 1, signal: stop.signal });
    await eventually(
      async () => calls.renew,
      (n) => n >= 2,
      'the slot to be renewed',
    );
    expect(calls.release).toBe(0);
    release.resolve();
    await eventually(
      async () => calls.release,
      (n) => n === 1,
      'the slot to be released',
    );
    stop.abort();
    await consuming;
  });

  it('asks nothing of the store per job on a queue without limits', async () => {
    const { counted, calls } = counting(new MemoryQueueLimits());
    await counted.setLimits('other', { ratePerSec: 1 });
    const ran: string[] = [];
    const stop = new AbortController();
    const deliveries = ['a', 'b', 'c'].map((id) => scriptedDelivery(id));
    const consuming = limited(scriptedBroker(deliveries), { limits: counted }).consume(
      'q',
      async (d) => void ran.push(d.messageId),
      { concurrency: 3, signal: stop.signal },
    );
    await eventually(
      async () => ran.length,
      (n) => n === 3,
      'every job to run',
    );
    stop.abort();
    await consuming;
    expect(calls.admit).toBe(0);
  });

  it('lets one key’s jobs wait while another key’s job runs', async () => {
    const store = new MemoryQueueLimits();
    await store.setLimits('q', { perKeyConcurrency: 1 });
    const ran: string[] = [];
    const release = deferred();
    const stop = new AbortController();
    const deliveries = [
      scriptedDelivery('a1', JSON.stringify({ key: 'a' })),
      scriptedDelivery('a2', JSON.stringify({ key: 'a' })),
      scriptedDelivery('b1', JSON.stringify({ key: 'b' })),
    ];
    const consuming = limited(scriptedBroker(deliveries), { limits: store, pollMs: 20 }).consume(
      'q',
      async (d) => {
        ran.push(d.messageId);
        if (d.messageId === 'a1') await release.promise;
      },
      { concurrency: 3, signal: stop.signal },
    );
    await eventually(
      async () => [...ran].sort(),
      (r) => r.join() === 'a1,b1',
      'a1 and b1 to run, a2 to wait',
    );
    release.resolve();
    await eventually(
      async () => ran.length,
      (n) => n === 3,
      'a2 to run once a1 ended',
    );
    stop.abort();
    await consuming;
  });
});
