/**
 * Order per key, with one handler and with four, where capabilities.ordering promises it.
 */
import type { OutgoingMessage } from '@polyqueue/core';
import { expect } from 'vitest';
import { HandlerSpy } from '../spy';
import { EMPTY, job, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const orderPerKey: Scenario = {
  name: 'keeps order per key',
  applies: (c) => c.ordering !== 'none',
  async run(h) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('order');
    const batch: OutgoingMessage[] = [];
    for (let i = 0; i < 30; i++)
      batch.push({ envelope: job({ key: i % 2 ? 'a' : 'b', i }), key: i % 2 ? 'a' : 'b' });
    await broker.publish(queue, batch);
    const spy = new HandlerSpy(timeoutMs);
    const c = h.consume(broker, queue, spy.handler(), 1);
    await c.ready;
    await spy.waitFor(() => spy.received.length === 30, 'thirty jobs');
    for (const key of ['a', 'b']) {
      const seq = spy.received
        .map((r) => r.envelope!.payload as { key: string; i: number })
        .filter((p) => p.key === key);
      expect(seq.map((p) => p.i)).toEqual([...seq.map((p) => p.i)].sort((x, y) => x - y));
    }
  },
};

export const orderPerKeyConcurrent: Scenario = {
  name: 'keeps order per key with concurrency 4 and keys interleaved',
  applies: (c) => c.ordering === 'per-key' || c.ordering === 'fifo',
  timeoutMs: 120_000,
  async run(h, ctx) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('keyorder');
    const keys = ['a', 'b', 'c', 'd', 'e'];
    const batch: OutgoingMessage[] = [];
    for (let i = 0; i < 60; i++) {
      // An irregular interleaving: runs of one key, then others, never a fixed rotation.
      const key = keys[(i + Math.floor(i / 3) + (i % 7 === 0 ? 2 : 0)) % keys.length]!;
      batch.push({ envelope: job({ key, i }), key });
    }
    await broker.publish(queue, batch);
    const started = new Map<string, number[]>(keys.map((k) => [k, []]));
    const running = new Set<string>();
    const overlaps: string[] = [];
    const spy = new HandlerSpy(timeoutMs * 2);
    const c = h.consume(
      broker,
      queue,
      spy.handler('c1', async (d, r) => {
        const { key, i } = r.envelope!.payload as { key: string; i: number };
        started.get(key)!.push(i);
        if (running.has(key)) overlaps.push(`${key}:${i}`);
        running.add(key);
        // Uneven work, so jobs that ran side by side would finish out of publish order.
        await new Promise((resolve) => setTimeout(resolve, ((i * 7) % 5) * 4));
        running.delete(key);
        await d.ack();
      }),
      4,
    );
    await c.ready;
    await spy.waitFor(() => spy.received.length === batch.length, `${batch.length} jobs`);
    for (const key of keys) {
      const published = batch
        .map((m) => m.envelope.payload as { key: string; i: number })
        .filter((p) => p.key === key)
        .map((p) => p.i);
      expect(started.get(key), `key ${key}`).toEqual(published);
    }
    // Per key: a key's next job waits for the one before it to finish (Kafka's keyed scheduler,
    // SQS FIFO's message groups), so jobs of one key never overlap. 'fifo' promises the queue's
    // order with one consumer only; with four handlers, overlaps are reported, not refused.
    if (h.broker.capabilities.ordering === 'per-key')
      expect(overlaps, 'jobs started while the previous job of their key still ran').toEqual([]);
    else if (overlaps.length > 0)
      await ctx.annotate(
        `${overlaps.length} of ${batch.length} jobs started while the previous job of their key still ran`,
      );
    await h.statsEventually(queue, EMPTY, 'after every job is acked');
  },
};
