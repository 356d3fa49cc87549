import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Broker,
  type ClaimEntry,
  type ClaimResult,
  CoalescingIdempotencyStore,
  type CompleteEntry,
  coalesceIdempotency,
  createEnvelope,
  createWorker,
  type Delivery,
  type DeliveryHandler,
  defineJob,
  encodeEnvelope,
  type IdempotencyStore,
  MAX_IDEMPOTENCY_BATCH,
  MemoryIdempotencyStore,
} from '../src/index';

/**
 * A store over a memory store that answers later (after a macrotask, as a network store does),
 * counting its calls and the sizes of its batches.
 */
class CountingStore implements IdempotencyStore {
  readonly memory = new MemoryIdempotencyStore();
  readonly calls = { claim: 0, complete: 0, claimMany: [] as number[], completeMany: [] as number[] };
  /** Set to make completeMany fail, or complete fail for one key. */
  failBatches = false;
  poisonKey: string | undefined;

  async claim(key: string, owner: string, leaseMs: number): Promise<ClaimResult> {
    this.calls.claim += 1;
    await later();
    return this.memory.claim(key, owner, leaseMs);
  }
  renew(key: string, owner: string, leaseMs: number): boolean {
    return this.memory.renew(key, owner, leaseMs);
  }
  async complete(key: string, owner: string, result: unknown, ttlMs?: number): Promise<boolean> {
    this.calls.complete += 1;
    await later();
    if (key === this.poisonKey) throw new Error(`cannot store ${key}`);
    return this.memory.complete(key, owner, result, ttlMs);
  }
  release(key: string, owner: string): void {
    this.memory.release(key, owner);
  }
  async claimMany(entries: readonly ClaimEntry[]): Promise<ClaimResult[]> {
    this.calls.claimMany.push(entries.length);
    await later();
    return entries.map((e) => this.memory.claim(e.key, e.owner, e.leaseMs));
  }
  async completeMany(entries: readonly CompleteEntry[]): Promise<boolean[]> {
    this.calls.completeMany.push(entries.length);
    await later();
    if (this.failBatches || entries.some((e) => e.key === this.poisonKey)) throw new Error('batch failed');
    return entries.map((e) => this.memory.complete(e.key, e.owner, e.result, e.ttlMs));
  }
}

function later(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('coalescing idempotency store', () => {
  it('wraps only stores that can batch', () => {
    const memory = new MemoryIdempotencyStore();
    expect(coalesceIdempotency(memory)).toBe(memory);
    const wrapped = coalesceIdempotency(new CountingStore());
    expect(wrapped).toBeInstanceOf(CoalescingIdempotencyStore);
    expect(coalesceIdempotency(wrapped)).toBe(wrapped);
  });

  it('leaves a store with its own group commit as it is', () => {
    const store = Object.assign(new CountingStore(), { groupCommit: true });
    expect(coalesceIdempotency(store)).toBe(store);
  });

  it('sends a lone call at once through the single method', async () => {
    const store = new CountingStore();
    const wrapped = coalesceIdempotency(store);
    expect(await wrapped.claim('k', 'a', 1_000)).toEqual({ state: 'claimed' });
    expect(await wrapped.complete('k', 'a', 'r')).toBe(true);
    expect(store.calls).toMatchObject({ claim: 1, complete: 1, claimMany: [], completeMany: [] });
  });

  it('gathers the calls made while a batch is in flight into the next batch, one answer each', async () => {
    const store = new CountingStore();
    const wrapped = coalesceIdempotency(store);
    const n = 100;
    const claims = await Promise.all(
      Array.from({ length: n }, (_, i) => wrapped.claim(`key-${i % 50}`, `owner-${i}`, 60_000)),
    );
    // Keys 0-49 claimed by owners 0-49; owners 50-99 find them busy, in order.
    expect(claims.slice(0, 50).every((c) => c.state === 'claimed')).toBe(true);
    expect(claims.slice(50).every((c) => c.state === 'busy')).toBe(true);
    // The others' marks first: refused, as another owner holds the key. Then the holders'.
    const order = Array.from({ length: n }, (_, i) => (i + 50) % n);
    const completes = await Promise.all(order.map((i) => wrapped.complete(`key-${i % 50}`, `owner-${i}`, i)));
    expect(completes).toEqual(order.map((i) => i < 50));
    expect(await wrapped.claim('key-7', 'late', 60_000)).toEqual({ state: 'done', result: 7 });

    // Made in one turn: each kind's 100 calls go out as one batch.
    expect(store.calls.claim + store.calls.claimMany.length).toBeLessThan(n / 10);
    expect(store.calls.complete + store.calls.completeMany.length).toBeLessThan(n / 10);
    expect(store.calls.claimMany.reduce((a, b) => a + b, 0) + store.calls.claim).toBe(n + 1);
    expect(store.calls.completeMany.reduce((a, b) => a + b, 0) + store.calls.complete).toBe(n);
  });

  it('keeps batches within MAX_IDEMPOTENCY_BATCH', async () => {
    const store = new CountingStore();
    const wrapped = coalesceIdempotency(store);
    const n = MAX_IDEMPOTENCY_BATCH * 2 + 10;
    await Promise.all(Array.from({ length: n }, (_, i) => wrapped.claim(`k${i}`, 'o', 60_000)));
    expect(Math.max(...store.calls.claimMany)).toBe(MAX_IDEMPOTENCY_BATCH);
    expect(store.calls.claimMany.reduce((a, b) => a + b, 0) + store.calls.claim).toBe(n);
  });

  it('sends a failed batch again entry by entry: only the entry that cannot be stored fails', async () => {
    const store = new CountingStore();
    const wrapped = coalesceIdempotency(store);
    for (let i = 0; i < 5; i++) await wrapped.claim(`k${i}`, `o${i}`, 60_000);
    store.poisonKey = 'k3';
    const settled = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => wrapped.complete(`k${i}`, `o${i}`, i)),
    );
    expect(settled.map((s) => s.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect((settled[3] as PromiseRejectedResult).reason).toEqual(new Error('cannot store k3'));
    expect(store.calls.completeMany).toEqual([5]);
    expect(await wrapped.claim('k4', 'x', 60_000)).toEqual({ state: 'done', result: 4 });
  });

  it('rejects every caller when the store fails for each of them', async () => {
    const store = new CountingStore();
    const wrapped = coalesceIdempotency(store);
    store.failBatches = true;
    store.poisonKey = 'k0';
    const settled = await Promise.allSettled([
      wrapped.complete('k0', 'o', 1),
      wrapped.complete('k0', 'o', 2),
      wrapped.complete('k0', 'o', 3),
    ]);
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    // The wrapper is not stuck: the next call goes out.
    store.failBatches = false;
    store.poisonKey = undefined;
    expect(await wrapped.complete('k0', 'o', 4)).toBe(true);
  });

  it('is what the runtime uses for a batching store: done marks shared, each written before its ack', async () => {
    const store = new CountingStore();
    const n = 64;
    const doneAtAck: unknown[] = [];
    const deliveries: Delivery[] = Array.from({ length: n }, (_, i) => {
      const envelope = createEnvelope('echo', { i }, { idempotencyKey: `job-${i}` });
      return {
        messageId: `m${i}`,
        body: encodeEnvelope(envelope),
        attempt: 1,
        ack: async () => {
          // What a redelivery right now would find: the job already done.
          doneAtAck.push(store.memory.claim(`job-${i}`, 'redelivery', 60_000));
        },
        retry: async () => {},
        deadLetter: async () => {},
        extend: async () => {},
      };
    });
    const broker = {
      capabilities: { leaseExtension: false },
      consume: async (_queue: string, handler: DeliveryHandler) => {
        await Promise.all(deliveries.map((d) => handler(d)));
      },
    } as unknown as Broker;
    const echo = defineJob(z.object({ i: z.number() }), async (payload) => payload.i);
    const worker = createWorker({
      broker,
      queue: 'q',
      idempotency: store,
      handlers: { echo },
      concurrency: n,
    });
    await worker.run(new AbortController().signal);

    expect(doneAtAck).toHaveLength(n);
    expect(doneAtAck.every((c) => (c as { state: string }).state === 'done')).toBe(true);
    expect(store.calls.claim + store.calls.claimMany.length).toBeLessThan(n / 4);
    expect(store.calls.complete + store.calls.completeMany.length).toBeLessThan(n / 4);
  });
});
