import { randomUUID } from 'node:crypto';
import {
  type BatchingIdempotencyStore,
  type ClaimEntry,
  type ClaimResult,
  type CompleteEntry,
  hasBatches,
  type IdempotencyStore,
} from '@polyqueue/core';
import { expect, it } from 'vitest';

/** A busy answer's wait depends on when it was asked: compare its bounds, not its value. */
function comparable(result: ClaimResult): unknown {
  if (result.state !== 'busy') return result;
  expect(result.retryInMs).toBeGreaterThan(0);
  expect(result.retryInMs).toBeLessThanOrEqual(60_000);
  return { state: 'busy' };
}

/**
 * The same keys' states under two prefixes: free, held live by another owner, held by the
 * claimant itself, done, and held by an owner whose lease has run out.
 */
async function prepare(
  store: IdempotencyStore,
  run: string,
  side: string,
): Promise<(name: string) => string> {
  const key = (name: string) => `batch-${run}-${side}-${name}`;
  await store.claim(key('busy'), 'other', 60_000);
  await store.claim(key('mine'), 'me', 60_000);
  await store.claim(key('done'), 'earlier', 60_000);
  await store.complete(key('done'), 'earlier', { messageId: 'm1' });
  await store.claim(key('stale'), 'stalled', 1);
  return key;
}

function claims(key: (name: string) => string): ClaimEntry[] {
  return [
    { key: key('free'), owner: 'me', leaseMs: 60_000 },
    { key: key('busy'), owner: 'me', leaseMs: 60_000 },
    { key: key('mine'), owner: 'me', leaseMs: 60_000 },
    { key: key('done'), owner: 'me', leaseMs: 60_000 },
    { key: key('stale'), owner: 'successor', leaseMs: 60_000 },
    // The same key twice in one batch: the first claimant holds it, the second finds it busy.
    { key: key('twice'), owner: 'first', leaseMs: 60_000 },
    { key: key('twice'), owner: 'second', leaseMs: 60_000 },
  ];
}

function completes(key: (name: string) => string): CompleteEntry[] {
  return [
    { key: key('mine'), owner: 'me', result: { n: 1 } },
    { key: key('busy'), owner: 'me', result: 'not mine' },
    { key: key('stale'), owner: 'stalled', result: 'late' },
    { key: key('unclaimed'), owner: 'me', result: null, ttlMs: 60_000 },
    { key: key('free'), owner: 'me', result: [1, 'two'] },
    { key: key('twice'), owner: 'second', result: 'refused' },
    { key: key('twice'), owner: 'first', result: 'first ran it' },
  ];
}

const PROBES = ['free', 'busy', 'mine', 'done', 'stale', 'twice', 'unclaimed'];

/**
 * Cases for claimMany and completeMany, run inside runStateStoreSuite when the store has them:
 * a batch answers each entry as the single call would, in order.
 */
export function runIdempotencyBatchCases(getStore: () => IdempotencyStore): void {
  function batching(skip: () => void): BatchingIdempotencyStore {
    const store = getStore();
    if (!hasBatches(store)) skip();
    return store as BatchingIdempotencyStore;
  }

  it('claims and completes a batch with the answers of single calls (claimed, busy, done, stale owner)', async (ctx) => {
    const store = batching(() => ctx.skip());
    const run = randomUUID();
    const single = await prepare(store, run, 'single');
    const batch = await prepare(store, run, 'batch');
    // Both stale leases (1 ms) have run out.
    await new Promise((resolve) => setTimeout(resolve, 20));

    const one: ClaimResult[] = [];
    for (const e of claims(single)) one.push(await store.claim(e.key, e.owner, e.leaseMs));
    const many = await store.claimMany(claims(batch));
    expect(many.map(comparable)).toEqual(one.map(comparable));
    expect(one.map((c) => c.state)).toEqual([
      'claimed',
      'busy',
      'claimed',
      'done',
      'claimed',
      'claimed',
      'busy',
    ]);
    expect(one[3]).toEqual({ state: 'done', result: { messageId: 'm1' } });

    const doneOne: boolean[] = [];
    for (const e of completes(single)) doneOne.push(await store.complete(e.key, e.owner, e.result, e.ttlMs));
    // Distinct keys (some refused) in one batch, then the key that comes twice in another.
    const marks = completes(batch);
    const doneMany = [
      ...(await store.completeMany(marks.slice(0, 5))),
      ...(await store.completeMany(marks.slice(5))),
    ];
    expect(doneMany).toEqual(doneOne);
    expect(doneOne).toEqual([true, false, false, true, true, false, true]);

    // What the two left behind reads the same.
    for (const name of PROBES) {
      const a = await store.claim(single(name), 'probe', 60_000);
      const b = await store.claim(batch(name), 'probe', 60_000);
      expect(comparable(b)).toEqual(comparable(a));
    }
    expect(await store.claim(batch('free'), 'x', 1_000)).toEqual({ state: 'done', result: [1, 'two'] });
    expect(await store.claim(batch('twice'), 'x', 1_000)).toEqual({ state: 'done', result: 'first ran it' });
  });

  it('answers empty batches and many keys in order', async (ctx) => {
    const store = batching(() => ctx.skip());
    expect(await store.claimMany([])).toEqual([]);
    expect(await store.completeMany([])).toEqual([]);
    const keys = Array.from({ length: 300 }, (_, i) => `batch-many-${randomUUID()}-${i}`);
    const claimed = await store.claimMany(keys.map((key) => ({ key, owner: 'o', leaseMs: 60_000 })));
    expect(claimed.every((c) => c.state === 'claimed')).toBe(true);
    const done = await store.completeMany(keys.map((key, i) => ({ key, owner: 'o', result: i })));
    expect(done.every(Boolean)).toBe(true);
    const again = await store.claimMany(keys.map((key) => ({ key, owner: 'p', leaseMs: 60_000 })));
    expect(again).toEqual(keys.map((_, i) => ({ state: 'done', result: i })));
  });
}
