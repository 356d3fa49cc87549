import { randomUUID } from 'node:crypto';
import type { JobRecord, StateStore } from '@polyqueue/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

function record(overrides: Partial<JobRecord> = {}): JobRecord {
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    type: 'send_email',
    queue: 'email',
    status: 'queued',
    attempts: 0,
    createdAt: now,
    updatedAt: now,
    ...overrides,
  };
}

/** The contract every StateStore (sqlite, redis, mysql) must keep. */
export function runStateStoreSuite(name: string, create: () => Promise<StateStore>): void {
  describe(`state store: ${name}`, () => {
    let store: StateStore;
    beforeAll(async () => {
      store = await create();
      await store.ping();
    }, 30_000);
    afterAll(async () => {
      await store?.close();
    });

    it('creates, reads and updates a job record', async () => {
      const r = record();
      expect(await store.createJob(r)).toEqual({ created: true });
      expect(await store.getJob(r.id)).toEqual(r);
      await store.updateJob(r.id, { status: 'succeeded', attempts: 1, result: { variants: ['a'] } });
      const updated = await store.getJob(r.id);
      expect(updated).toMatchObject({ status: 'succeeded', attempts: 1, result: { variants: ['a'] } });
      expect(updated!.updatedAt >= r.updatedAt).toBe(true);
      expect(await store.getJob(randomUUID())).toBeUndefined();
      await store.updateJob(randomUUID(), { status: 'dead' }); // unknown id: ignored
    });

    it('returns the existing job for a reused idempotency key, atomically', async () => {
      const key = `key-${randomUUID()}`;
      const attempts = Array.from({ length: 10 }, () => record({ idempotencyKey: key, requestHash: 'h1' }));
      const results = await Promise.all(attempts.map((r) => store.createJob(r)));
      const created = results.filter((r) => r.created);
      expect(created).toHaveLength(1);
      const winner = attempts[results.findIndex((r) => r.created)]!;
      for (const r of results) if (!r.created) expect(r.existing.id).toBe(winner.id);
      expect(await store.getJob(winner.id)).toMatchObject({ idempotencyKey: key, requestHash: 'h1' });
    });

    it('claims an idempotency key once, with a lease, then done or released', async () => {
      const key = `claim-${randomUUID()}`;
      const claims = await Promise.all(Array.from({ length: 10 }, () => store.claim(key, 60_000)));
      expect(claims.filter((c) => c.state === 'claimed')).toHaveLength(1);
      const busy = claims.find((c) => c.state === 'busy');
      expect(busy && busy.state === 'busy' && busy.retryInMs > 0 && busy.retryInMs <= 60_000).toBe(true);

      await store.release(key);
      expect((await store.claim(key, 60_000)).state).toBe('claimed');
      await store.complete(key, { messageId: 'm1' });
      expect(await store.claim(key, 60_000)).toEqual({ state: 'done', result: { messageId: 'm1' } });
      await store.release(key); // a done key stays done
      expect((await store.claim(key, 60_000)).state).toBe('done');
    });

    it('lets a claim be taken over once its lease has expired', async () => {
      const key = `lease-${randomUUID()}`;
      expect((await store.claim(key, 1)).state).toBe('claimed');
      const deadline = Date.now() + 5_000;
      let state = 'busy';
      while (state === 'busy' && Date.now() < deadline) {
        state = (await store.claim(key, 60_000)).state;
      }
      expect(state).toBe('claimed');
    });
  });
}
