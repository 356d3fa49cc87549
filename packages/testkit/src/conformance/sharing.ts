/**
 * Consumers sharing a queue (each job once) and pub/sub groups (every group, one member each).
 */
import { createEnvelope } from '@polyqueue/core';
import { expect } from 'vitest';
import { startSubscriber } from '../consumers';
import { HandlerSpy } from '../spy';
import { EMPTY, job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const competingConsumers: Scenario = {
  name: 'shares a queue between competing consumers, each job handled once',
  timeoutMs: 120_000,
  async run(h) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('compete');
    const second = await h.another();
    const spy = new HandlerSpy(timeoutMs * 2);
    const c1 = h.consume(broker, queue, spy.handler('c1'), 2);
    const c2 = h.consume(second, queue, spy.handler('c2'), 2);
    await Promise.all([c1.ready, c2.ready]);
    const envelopes = Array.from({ length: 200 }, (_, i) => job({ i }));
    await broker.publish(queue, messages(envelopes));
    await spy.waitFor(() => spy.distinctIds().size === 200, '200 jobs');
    await h.statsEventually(queue, EMPTY, 'after all acked');
    await Promise.all([c1.stop(), c2.stop()]);
    expect(spy.received.length).toBe(200);
  },
};

export const fanOutToGroups: Scenario = {
  name: 'fans an event out to every group, one member per group',
  applies: (c) => c.pubsub !== 'none',
  timeoutMs: 120_000,
  async run(h) {
    const { broker, timeoutMs } = h;
    const topic = uniqueQueueName('topic');
    const second = await h.another();
    const spyA = new HandlerSpy(timeoutMs);
    const spyB = new HandlerSpy(timeoutMs);
    const subs = [
      startSubscriber(broker, topic, 'groupa', spyA.handler('a1')),
      startSubscriber(second, topic, 'groupa', spyA.handler('a2')),
      startSubscriber(broker, topic, 'groupb', spyB.handler('b1')),
    ];
    h.consumers.push(...subs);
    await Promise.all(subs.map((s) => s.ready));
    const events = Array.from({ length: 10 }, (_, i) => createEnvelope('job.succeeded', { i }));
    for (const e of events) await broker.publishEvent(topic, e);
    await spyA.waitFor(() => spyA.distinctIds().size === 10, 'group a to get all events');
    await spyB.waitFor(() => spyB.distinctIds().size === 10, 'group b to get all events');
    await Promise.all(subs.map((s) => s.stop()));
    expect(spyA.received.length).toBe(10);
    expect(spyB.received.length).toBe(10);
    expect(spyA.distinctIds()).toEqual(new Set(events.map((e) => e.id)));
  },
};
