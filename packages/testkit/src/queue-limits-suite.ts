import { randomUUID } from 'node:crypto';
import { bucketCapacity, type QueueLimits } from '@polyqueue/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './spy';

/**
 * The contract every QueueLimits (sqlite, redis, mysql, memory) must keep. `create` is called
 * twice: the second instance stands for another process on the same store, which must obey
 * the first one's limits, tokens and slots at once.
 */
export function runQueueLimitsSuite(name: string, create: () => Promise<QueueLimits>): void {
  describe(`queue limits: ${name}`, () => {
    let limits: QueueLimits;
    let elsewhere: QueueLimits;
    beforeAll(async () => {
      limits = await create();
      elsewhere = await create();
    }, 30_000);
    afterAll(async () => {
      await limits?.close();
      await elsewhere?.close();
    });

    const queue = () => `q${randomUUID().slice(0, 8)}`;
    const holder = () => randomUUID();
    const LEASE = 60_000;

    it('stores, replaces and clears a queue’s limits, seen by every client', async () => {
      const q = queue();
      expect((await limits.limits()).has(q)).toBe(false);
      await limits.setLimits(q, { ratePerSec: 2.5, concurrency: 3 });
      expect((await elsewhere.limits()).get(q)).toEqual({ ratePerSec: 2.5, concurrency: 3 });
      await elsewhere.setLimits(q, { perKeyConcurrency: 1 });
      expect((await limits.limits()).get(q), 'a PUT replaces, it does not merge').toEqual({
        perKeyConcurrency: 1,
      });
      await limits.setLimits(q, {});
      expect((await elsewhere.limits()).has(q)).toBe(false);
    });

    it('refuses a limit no queue can have, and a name no queue can have', async () => {
      const q = queue();
      await expect(limits.setLimits(q, { ratePerSec: -1 })).rejects.toThrow(/ratePerSec/);
      await expect(limits.setLimits(q, { ratePerSec: 0 })).rejects.toThrow(/ratePerSec/);
      await expect(limits.setLimits(q, { concurrency: 1.5 })).rejects.toThrow(/concurrency/);
      await expect(limits.setLimits(q, { perKeyConcurrency: 0 })).rejects.toThrow(/perKeyConcurrency/);
      await expect(limits.setLimits('a b', { concurrency: 1 })).rejects.toThrow(/queue name/);
      expect((await limits.limits()).has(q)).toBe(false);
    });

    it('admits every job of a queue without limits, taking no slot', async () => {
      expect(await limits.admit(queue(), { holder: holder(), leaseMs: LEASE })).toEqual({
        granted: true,
        slot: false,
      });
    });

    it('hands out tokens at the rate, shared by every client', async () => {
      const q = queue();
      const rate = 4;
      await limits.setLimits(q, { ratePerSec: rate });
      const first = await limits.admit(q, { holder: holder(), leaseMs: LEASE });
      expect(first, 'a new bucket holds one token; a rate alone takes no slot').toEqual({
        granted: true,
        slot: false,
      });
      // The bucket is now empty (or nearly): the other client must wait about 1 / rate.
      const next = await elsewhere.admit(q, { holder: holder(), leaseMs: LEASE });
      expect(next.granted).toBe(false);
      if (!next.granted) {
        expect(next.retryInMs).toBeGreaterThan(0);
        expect(next.retryInMs).toBeLessThanOrEqual(1000 / rate);
      }
      // Once waited for, a token is there, and is taken by one client only.
      const later = await eventually(
        () => elsewhere.admit(q, { holder: holder(), leaseMs: LEASE }),
        (a) => a.granted,
        'a token after waiting',
        5_000,
        next.granted ? 10 : next.retryInMs,
      );
      expect(later.granted).toBe(true);
      await limits.setLimits(q, {});
    });

    it('never saves up more than the bucket holds', async () => {
      const q = queue();
      const rate = 10;
      await limits.setLimits(q, { ratePerSec: rate });
      await limits.admit(q, { holder: holder(), leaseMs: LEASE });
      // Let far more tokens be earned (5) than the bucket holds (2).
      const until = Date.now() + 500;
      await eventually(
        async () => Date.now(),
        (now) => now >= until,
        'half a second to pass',
      );
      const started = Date.now();
      let granted = 0;
      for (let i = 0; i < 6; i += 1)
        if ((await limits.admit(q, { holder: holder(), leaseMs: LEASE })).granted) granted += 1;
      const earnedMeanwhile = Math.ceil(((Date.now() - started) * rate) / 1000);
      expect(granted).toBeGreaterThanOrEqual(bucketCapacity(rate));
      expect(granted).toBeLessThanOrEqual(bucketCapacity(rate) + earnedMeanwhile);
      await limits.setLimits(q, {});
    });

    it('holds a queue to its concurrency across clients; a release frees a slot', async () => {
      const q = queue();
      await limits.setLimits(q, { concurrency: 2 });
      const [a, b, c] = [holder(), holder(), holder()];
      expect(await limits.admit(q, { holder: a, leaseMs: LEASE })).toEqual({ granted: true, slot: true });
      expect(await elsewhere.admit(q, { holder: b, leaseMs: LEASE })).toEqual({ granted: true, slot: true });
      const refused = await limits.admit(q, { holder: c, leaseMs: LEASE });
      expect(refused.granted).toBe(false);
      await elsewhere.release(q, a);
      expect(await limits.admit(q, { holder: c, leaseMs: LEASE })).toEqual({ granted: true, slot: true });
      expect((await elsewhere.admit(q, { holder: holder(), leaseMs: LEASE })).granted).toBe(false);
      for (const h of [b, c]) await limits.release(q, h);
      await limits.setLimits(q, {});
    });

    it('holds each key to its own concurrency, so one key cannot take every slot', async () => {
      const q = queue();
      await limits.setLimits(q, { concurrency: 3, perKeyConcurrency: 1 });
      const admit = (key?: string) =>
        elsewhere.admit(q, { holder: holder(), leaseMs: LEASE, ...(key ? { key } : {}) });
      expect((await admit('tenant-a')).granted).toBe(true);
      expect((await admit('tenant-a')).granted, 'a second job of the same key waits').toBe(false);
      expect((await admit('tenant-b')).granted, 'another key runs').toBe(true);
      expect((await admit()).granted, 'a job without a key counts only toward the queue').toBe(true);
      expect((await admit('tenant-c')).granted, 'the queue’s own limit still holds').toBe(false);
      await limits.setLimits(q, {});
    });

    it('frees the slot of a holder that stopped renewing, and keeps one that renews', async () => {
      const q = queue();
      await limits.setLimits(q, { concurrency: 2 });
      const [kept, dead] = [holder(), holder()];
      await limits.admit(q, { holder: kept, leaseMs: 400 });
      await limits.admit(q, { holder: dead, leaseMs: 400 });
      await limits.renew(q, [kept], LEASE);
      // The dead holder's lease runs out; the renewed one's does not.
      await eventually(
        () => elsewhere.admit(q, { holder: holder(), leaseMs: LEASE }),
        (a) => a.granted,
        'the dead holder’s slot to come back',
        10_000,
      );
      expect((await elsewhere.admit(q, { holder: holder(), leaseMs: LEASE })).granted).toBe(false);
      await limits.setLimits(q, {});
    });

    it('admits without a slot once the limits are cleared, and leaves other queues alone', async () => {
      const [q, other] = [queue(), queue()];
      await limits.setLimits(q, { concurrency: 1 });
      await limits.admit(q, { holder: holder(), leaseMs: LEASE });
      expect((await limits.admit(q, { holder: holder(), leaseMs: LEASE })).granted).toBe(false);
      expect(await limits.admit(other, { holder: holder(), leaseMs: LEASE })).toEqual({
        granted: true,
        slot: false,
      });
      await elsewhere.setLimits(q, {});
      expect(await limits.admit(q, { holder: holder(), leaseMs: LEASE })).toEqual({
        granted: true,
        slot: false,
      });
    });

    it('closes twice without an error', async () => {
      const extra = await create();
      await extra.close();
      await extra.close();
    });
  });
}
