import { randomUUID } from 'node:crypto';
import type { JobRecord, StateStore } from '@polyqueue/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIdempotencyBatchCases } from './idempotency-batch-suite';
import { runJobAttemptCases } from './job-attempts-suite';

/** A job record as the API writes it on accept (`queued`, a fresh id); `overrides` replace fields. */
export function queuedJobRecord(overrides: Partial<JobRecord> = {}): JobRecord {
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
      const r = queuedJobRecord();
      expect(await store.createJob(r)).toEqual({ created: true });
      expect(await store.getJob(r.id)).toEqual(r);
      await store.updateJob(r.id, { status: 'succeeded', attempts: 1, result: { variants: ['a'] } });
      const updated = await store.getJob(r.id);
      expect(updated).toMatchObject({ status: 'succeeded', attempts: 1, result: { variants: ['a'] } });
      expect(updated!.updatedAt >= r.updatedAt).toBe(true);
      expect(await store.getJob(randomUUID())).toBeUndefined();
      expect(await store.updateJob(randomUUID(), { status: 'dead' })).toBe(false); // unknown id: ignored
    });

    it('changes a record only from the expected status when asked to (no status going backwards)', async () => {
      const r = queuedJobRecord({ status: 'pending' });
      await store.createJob(r);
      expect(await store.updateJob(r.id, { status: 'queued' }, 'pending')).toBe(true);
      expect(await store.updateJob(r.id, { status: 'succeeded', attempts: 1 })).toBe(true);
      // The API's late 'queued' after a fast worker's 'succeeded' changes nothing.
      expect(await store.updateJob(r.id, { status: 'queued' }, 'pending')).toBe(false);
      expect(await store.getJob(r.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    });

    it('keeps the payload a job was created with (or the mark that it was too large) through status changes', async () => {
      const payload = { to: 'a@example.com', subject: 'こんにちは', nested: { n: [1, 2.5, null, true] } };
      const kept = queuedJobRecord({ status: 'pending', payload });
      await store.createJob(kept);
      expect(await store.getJob(kept.id)).toEqual(kept);
      await store.updateJob(kept.id, { status: 'succeeded', attempts: 1, result: { ok: true } });
      expect(await store.getJob(kept.id)).toMatchObject({ status: 'succeeded', payload });
      const tooLarge = queuedJobRecord({ payloadTruncated: true });
      await store.createJob(tooLarge);
      const read = await store.getJob(tooLarge.id);
      expect(read).toMatchObject({ payloadTruncated: true });
      expect(read).not.toHaveProperty('payload');
      const plain = queuedJobRecord();
      await store.createJob(plain);
      const none = await store.getJob(plain.id);
      expect(none).not.toHaveProperty('payload');
      expect(none).not.toHaveProperty('payloadTruncated');
    });

    it('records a job progress beside its status, and keeps it through later status changes', async () => {
      const r = queuedJobRecord({ status: 'processing' });
      await store.createJob(r);
      expect((await store.getJob(r.id))!.progress).toBeUndefined();
      const first = { percent: 33.5, message: 'done 1 of 3 variants', at: new Date().toISOString() };
      expect(await store.updateJob(r.id, { progress: first })).toBe(true);
      expect(await store.getJob(r.id)).toMatchObject({ status: 'processing', progress: first });
      const last = { percent: 100, at: new Date().toISOString() }; // no message: none stored
      await store.updateJob(r.id, { progress: last });
      await store.updateJob(r.id, { status: 'succeeded', attempts: 1, result: { ok: true } });
      const done = await store.getJob(r.id);
      expect(done).toMatchObject({ status: 'succeeded', result: { ok: true } });
      expect(done!.progress).toEqual(last);
    });

    it('returns the existing job for a reused idempotency key, atomically', async () => {
      const key = `key-${randomUUID()}`;
      const attempts = Array.from({ length: 10 }, () =>
        queuedJobRecord({ idempotencyKey: key, requestHash: 'h1' }),
      );
      const results = await Promise.all(attempts.map((r) => store.createJob(r)));
      const created = results.filter((r) => r.created);
      expect(created).toHaveLength(1);
      const winner = attempts[results.findIndex((r) => r.created)]!;
      for (const r of results) if (!r.created) expect(r.existing.id).toBe(winner.id);
      expect(await store.getJob(winner.id)).toMatchObject({ idempotencyKey: key, requestHash: 'h1' });
    });

    it('claims an idempotency key once, with a lease, then done or released', async () => {
      const key = `claim-${randomUUID()}`;
      const claims = await Promise.all(
        Array.from({ length: 10 }, (_, i) => store.claim(key, `worker-${i}`, 60_000)),
      );
      expect(claims.filter((c) => c.state === 'claimed')).toHaveLength(1);
      const holder = `worker-${claims.findIndex((c) => c.state === 'claimed')}`;
      const busy = claims.find((c) => c.state === 'busy');
      expect(busy && busy.state === 'busy' && busy.retryInMs > 0 && busy.retryInMs <= 60_000).toBe(true);

      await store.release(key, holder);
      expect((await store.claim(key, 'next', 60_000)).state).toBe('claimed');
      expect(await store.complete(key, 'next', { messageId: 'm1' })).toBe(true);
      expect(await store.claim(key, 'later', 60_000)).toEqual({ state: 'done', result: { messageId: 'm1' } });
      await store.release(key, 'next'); // a done key stays done
      expect((await store.claim(key, 'later', 60_000)).state).toBe('done');
    });

    it('lets only the owner renew, complete or release a claim', async () => {
      const key = `owned-${randomUUID()}`;
      expect((await store.claim(key, 'a', 60_000)).state).toBe('claimed');
      expect((await store.claim(key, 'a', 60_000)).state).toBe('claimed'); // the owner again: renewed
      expect(await store.renew(key, 'a', 60_000)).toBe(true);
      expect(await store.renew(key, 'b', 60_000)).toBe(false);
      await store.release(key, 'b'); // not b's: nothing happens
      expect((await store.claim(key, 'b', 60_000)).state).toBe('busy');
      expect(await store.complete(key, 'b', 'b ran it')).toBe(false);
      expect((await store.claim(key, 'b', 60_000)).state).toBe('busy');
      expect(await store.complete(key, 'a', 'a ran it')).toBe(true);
      expect(await store.claim(key, 'b', 60_000)).toEqual({ state: 'done', result: 'a ran it' });
      expect(await store.renew(key, 'a', 60_000)).toBe(false); // done: nothing left to renew
    });

    it('lets a claim be taken over once its lease has expired, and keeps the stale owner off it', async () => {
      const key = `lease-${randomUUID()}`;
      expect((await store.claim(key, 'stalled', 1)).state).toBe('claimed');
      const deadline = Date.now() + 5_000;
      let state = 'busy';
      while (state === 'busy' && Date.now() < deadline) {
        state = (await store.claim(key, 'successor', 60_000)).state;
      }
      expect(state).toBe('claimed');
      // The stalled worker wakes up: its release and renew must not touch the successor's claim.
      await store.release(key, 'stalled');
      expect(await store.renew(key, 'stalled', 60_000)).toBe(false);
      expect((await store.claim(key, 'third', 60_000)).state).toBe('busy');
      expect(await store.complete(key, 'stalled', 'late')).toBe(false);
      expect(await store.renew(key, 'successor', 60_000)).toBe(true);
    });

    it('renews a lease so that it outlives its first term', async () => {
      const key = `renew-${randomUUID()}`;
      expect((await store.claim(key, 'a', 300)).state).toBe('claimed');
      const until = Date.now() + 900;
      // Renewed every 100 ms for three lease terms: never free for another owner.
      while (Date.now() < until) {
        expect(await store.renew(key, 'a', 300)).toBe(true);
        expect((await store.claim(key, 'b', 300)).state).toBe('busy');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });

    it('searches jobs by status, type, queue and text, newest first, a page at a time', async () => {
      // A type of its own, so records of earlier runs and other cases are not in the results.
      const type = `search-${randomUUID()}`;
      const base = Date.parse('2026-01-01T00:00:00.000Z');
      const at = (i: number) => new Date(base + i * 1000).toISOString();
      const jobs = [
        queuedJobRecord({ type, createdAt: at(0), updatedAt: at(0), status: 'succeeded' }),
        queuedJobRecord({ type, createdAt: at(1), updatedAt: at(1), queue: 'images', status: 'dead' }),
        queuedJobRecord({ type, createdAt: at(2), updatedAt: at(2), idempotencyKey: `key-${randomUUID()}` }),
        // Two jobs of one millisecond: the id decides their order, and a page may end between them.
        queuedJobRecord({ type, createdAt: at(3), updatedAt: at(3), id: `b-${randomUUID()}` }),
        queuedJobRecord({ type, createdAt: at(3), updatedAt: at(3), id: `a-${randomUUID()}` }),
      ];
      for (const j of jobs) await store.createJob(j);
      const failed = `SMTP 550 mailbox ${randomUUID()} unavailable`;
      await store.updateJob(jobs[1]!.id, { lastError: failed });
      const ids = async (filter: Parameters<NonNullable<StateStore['searchJobs']>>[0]) =>
        (await store.searchJobs({ type, ...filter }, 10)).jobs.map((j) => j.id);
      const [oldest, dead, keyed, late, early] = jobs.map((j) => j.id) as [
        string,
        string,
        string,
        string,
        string,
      ];

      expect(await ids({})).toEqual([late, early, keyed, dead, oldest]);
      expect(await ids({ status: 'queued' })).toEqual([late, early, keyed]);
      expect(await ids({ queue: 'images' })).toEqual([dead]);
      expect(await ids({ q: keyed })).toEqual([keyed]);
      expect(await ids({ q: jobs[2]!.idempotencyKey })).toEqual([keyed]);
      expect(await ids({ q: failed.slice(4, 30) })).toEqual([dead]); // a part of the error text
      expect(await ids({ q: failed.toLowerCase() })).toEqual([]); // case-sensitive
      expect(await ids({ q: 'key-' })).toEqual([]); // the key matches whole, not a part of it
      expect(await ids({ status: 'dead', queue: 'email' })).toEqual([]);
      const found = (await store.searchJobs({ q: dead }, 10)).jobs;
      expect(found).toEqual([{ ...jobs[1], lastError: failed, updatedAt: expect.any(String) }]);

      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const page = await store.searchJobs({ type }, 2, cursor);
        pages.push(page.jobs.map((j) => j.id));
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      expect(pages).toEqual([[late, early], [keyed, dead], [oldest]]);
      await expect(store.searchJobs({ type }, 2, 'not-a-cursor')).rejects.toThrow(TypeError);
    });

    it('lists jobs without their payloads (getJob has them)', async () => {
      const type = `search-${randomUUID()}`;
      const payload = { to: 'a@example.com', body: 'x'.repeat(1000) };
      const kept = queuedJobRecord({ type, payload });
      const tooLarge = queuedJobRecord({ type, payloadTruncated: true });
      for (const j of [kept, tooLarge]) await store.createJob(j);
      const listed = (await store.searchJobs({ type }, 10)).jobs;
      expect(listed.map((j) => j.id).sort()).toEqual([kept.id, tooLarge.id].sort());
      for (const j of listed) {
        expect(j).not.toHaveProperty('payload');
        expect(j).not.toHaveProperty('payloadTruncated');
      }
      expect(await store.getJob(kept.id)).toMatchObject({ payload });
      expect(await store.getJob(tooLarge.id)).toMatchObject({ payloadTruncated: true });
    });

    runIdempotencyBatchCases(() => store);
    runJobAttemptCases(() => store);
  });
}
