/**
 * The basic path: publish, consume, ack, with stats at each step; a batch handled once each.
 */
import { expect } from 'vitest';
import { deferred, HandlerSpy } from '../spy';
import { EMPTY, job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const publishConsumeAck: Scenario = {
  name: 'publishes, consumes and acks one job; stats follow each step',
  async run(h) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('basic');
    const envelope = job({ n: 1 });
    await broker.publish(queue, messages([envelope]));
    await h.statsEventually(queue, { ready: 1, inFlight: 0 }, 'after publish');

    const spy = new HandlerSpy(timeoutMs);
    const gate = deferred();
    const c = h.consume(
      broker,
      queue,
      spy.handler('c1', async (d) => {
        await gate.promise;
        await d.ack();
      }),
    );
    await c.ready;
    await spy.waitFor(() => spy.received.length === 1, 'the delivery');
    await h.statsEventually(queue, { ready: 0, inFlight: 1 }, 'while handling');
    gate.resolve();
    await h.statsEventually(queue, EMPTY, 'after ack');

    const [r] = spy.received;
    expect(r!.envelope).toEqual(envelope);
    expect(r!.delivery.attempt).toBe(1);
  },
};

export const batchOnce: Scenario = {
  name: 'handles a batch of jobs each exactly once',
  timeoutMs: 180_000,
  async run(h) {
    const { broker, options, timeoutMs } = h;
    const queue = uniqueQueueName('batch');
    const total = options.batchSize ?? 1_000;
    const envelopes = Array.from({ length: total }, (_, i) => job({ i }));
    for (let i = 0; i < total; i += 100) await broker.publish(queue, messages(envelopes.slice(i, i + 100)));
    const spy = new HandlerSpy(timeoutMs * 3);
    const c = h.consume(broker, queue, spy.handler(), 8);
    await c.ready;
    await spy.waitFor(() => spy.distinctIds().size === total, `${total} distinct jobs`);
    await h.statsEventually(queue, EMPTY, 'after the batch');
    await c.stop();
    expect(spy.received.length).toBe(total);
    expect([...spy.distinctIds()].sort()).toEqual(envelopes.map((e) => e.id).sort());
  },
};
