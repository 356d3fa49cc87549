/**
 * A delivery's outcomes: retry with its delay and attempt + 1, dead letters and their store,
 * and that a second outcome is refused with AlreadySettledError.
 */
import { AlreadySettledError } from '@polyqueue/core';
import { expect } from 'vitest';
import { eventually, HandlerSpy } from '../spy';
import { EMPTY, job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const retryAfterDelay: Scenario = {
  name: 'redelivers a retried job no earlier than its delay, with attempt + 1',
  async run(h) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('retry');
    const delayMs = 1_500;
    const envelope = job();
    let retriedAt = 0;
    const spy = new HandlerSpy(timeoutMs);
    const c = h.consume(
      broker,
      queue,
      spy.handler('c1', async (d) => {
        if (d.attempt === 1) {
          retriedAt = Date.now();
          await d.retry(delayMs);
        } else await d.ack();
      }),
    );
    await c.ready;
    await broker.publish(queue, messages([envelope]));
    await spy.waitFor(() => spy.received.length === 1, 'the first delivery');
    // A waiting retry is not ready. Brokers that delay by re-publishing count it as delayed;
    // brokers that keep the message invisible (SQS ChangeMessageVisibility) as in flight.
    await eventually(
      () => broker.stats(queue),
      (s) => s.ready === 0 && s.delayed + s.inFlight === 1,
      'while the retry waits: ready 0 and delayed + in flight 1',
      timeoutMs,
    );
    await spy.waitFor(() => spy.received.length === 2, 'the retry', timeoutMs + delayMs);
    const second = spy.received[1]!;
    expect(second.id).toBe(envelope.id);
    expect(second.delivery.attempt).toBe(2);
    if (broker.capabilities.delayedDelivery !== 'none') {
      // 20 ms allows for timer granularity only; early is a failure.
      expect(second.at - retriedAt).toBeGreaterThanOrEqual(delayMs - 20);
    }
    await h.statsEventually(queue, EMPTY, 'after the retry is acked');
  },
};

export const deadLetterStore: Scenario = {
  name: 'dead-letters a job, then lists, redrives and purges dead letters',
  async run(h) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('dead');
    const a = job({ a: 1 });
    const b = job({ b: 1 });
    let redriven = false;
    const spy = new HandlerSpy(timeoutMs);
    const c = h.consume(
      broker,
      queue,
      spy.handler('c1', async (d, r) => {
        if (redriven && r.id === a.id) await d.ack();
        else await d.deadLetter(`bad job ${r.id}`);
      }),
    );
    await c.ready;
    await broker.publish(queue, messages([a, b]));
    await h.statsEventually(queue, { ready: 0, inFlight: 0, dead: 2 }, 'after dead-lettering two');

    const dead = broker.deadLetters(queue);
    const listed = await dead.list(10);
    expect(listed.map((d) => d.id).sort()).toEqual([a.id, b.id].sort());
    const deadA = listed.find((d) => d.id === a.id)!;
    expect(deadA.reason).toBe(`bad job ${a.id}`);
    expect(JSON.parse(deadA.body).id).toBe(a.id);
    expect(Number.isNaN(Date.parse(deadA.deadAt))).toBe(false);

    redriven = true;
    expect(await dead.redrive([a.id])).toBe(1);
    await spy.waitFor(() => spy.count(a.id) === 2, 'the redriven job');
    expect(spy.received.filter((r) => r.id === a.id)[1]!.delivery.attempt).toBe(1);
    await h.statsEventually(queue, { ready: 0, inFlight: 0, dead: 1 }, 'after the redrive');

    expect(await dead.purge()).toBe(1);
    await h.statsEventually(queue, EMPTY, 'after the purge');
    expect(await dead.list(10)).toEqual([]);
  },
};

export const settleOnce: Scenario = {
  name: 'refuses a second outcome of a delivery with AlreadySettledError',
  async run(h) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('settle');
    // Each job's first outcome, then the second one that must be refused.
    const plans = [
      { first: 'ack', second: 'retry' },
      { first: 'ack', second: 'ack' },
      { first: 'deadLetter', second: 'ack' },
    ] as const;
    const envelopes = plans.map((plan) => job({ ...plan }));
    const refused = new Map<string, unknown>();
    const spy = new HandlerSpy(timeoutMs);
    const c = h.consume(
      broker,
      queue,
      spy.handler('c1', async (d, r) => {
        const plan = r.envelope!.payload as Partial<(typeof plans)[number]>;
        if (!plan.first) return d.ack(); // the marker
        if (plan.first === 'ack') await d.ack();
        else await d.deadLetter('the first outcome');
        // retry(0): a second outcome that slipped through would bring the job back at once.
        const second = plan.second === 'retry' ? d.retry(0) : d.ack();
        refused.set(
          r.id,
          await second.then(
            () => 'resolved',
            (error: unknown) => error,
          ),
        );
      }),
    );
    await c.ready;
    await broker.publish(queue, messages(envelopes));
    await spy.waitFor(() => refused.size === plans.length, 'three second outcomes');
    envelopes.forEach((envelope, i) => {
      const error = refused.get(envelope.id);
      expect(error, `${plans[i]!.first} then ${plans[i]!.second}`).toBeInstanceOf(AlreadySettledError);
      const settled = error as AlreadySettledError;
      expect(settled.name).toBe('AlreadySettledError');
      expect(settled.outcome).toBe(plans[i]!.second);
      expect(settled.messageId).toBe(spy.received.find((r) => r.id === envelope.id)!.delivery.messageId);
    });
    // The first outcomes stand: two acked, one dead letter, and no job comes back.
    await h.statsEventually(
      queue,
      { ready: 0, inFlight: 0, delayed: 0, dead: 1 },
      'after the first outcomes',
    );
    const marker = job({ marker: true });
    await broker.publish(queue, messages([marker]));
    await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
    for (const envelope of envelopes) expect(spy.count(envelope.id)).toBe(1);
    const dead = await broker.deadLetters(queue).list(10);
    expect(dead.map((d) => [d.id, d.reason])).toEqual([[envelopes[2]!.id, 'the first outcome']]);
  },
};
