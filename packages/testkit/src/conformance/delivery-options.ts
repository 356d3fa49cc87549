/**
 * Publish options: delayed delivery and priority, where the broker has them.
 */
import type { OutgoingMessage } from '@polyqueue/core';
import { expect } from 'vitest';
import { HandlerSpy } from '../spy';
import { EMPTY, job, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const delayedPublish: Scenario = {
  name: 'delays a published job until it is due',
  applies: (c) => c.delayedDelivery !== 'none',
  async run(h) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('delay');
    const delayMs = 1_500;
    const envelope = job();
    const publishedAt = Date.now();
    await broker.publish(queue, [{ envelope, delayMs }]);
    await h.statsEventually(queue, { ready: 0, delayed: 1 }, 'the delayed job');
    const spy = new HandlerSpy(timeoutMs + delayMs);
    const c = h.consume(broker, queue, spy.handler());
    await c.ready;
    await spy.waitFor(() => spy.received.length === 1, 'the delayed job');
    expect(spy.received[0]!.at - publishedAt).toBeGreaterThanOrEqual(delayMs - 20);
    await h.statsEventually(queue, EMPTY, 'after ack');
  },
};

export const priorityOrder: Scenario = {
  name: 'hands out ready jobs by priority (high, normal, low)',
  applies: (c) => c.priority !== 'none',
  async run(h) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('prio');
    const order: OutgoingMessage[] = [];
    for (let i = 0; i < 3; i++) {
      for (const priority of ['low', 'normal', 'high'] as const)
        order.push({ envelope: job({ priority, i }), priority });
    }
    await broker.publish(queue, order);
    await h.statsEventually(queue, { ready: 9 }, 'nine ready jobs');
    const spy = new HandlerSpy(timeoutMs);
    const c = h.consume(broker, queue, spy.handler(), 1);
    await c.ready;
    await spy.waitFor(() => spy.received.length === 9, 'nine jobs');
    const seen = spy.received.map((r) => (r.envelope!.payload as { priority: string }).priority);
    expect(seen).toEqual(['high', 'high', 'high', 'normal', 'normal', 'normal', 'low', 'low', 'low']);
  },
};
