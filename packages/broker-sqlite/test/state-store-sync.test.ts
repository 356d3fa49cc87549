import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { queuedJobRecord } from '@polyqueue/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStateStore } from '../src/sqlite-state-store';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sqlite-sync-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite state store: which writes sync the WAL', () => {
  it("syncs a job's acceptance and its end, not its claim, start or progress", async () => {
    const store = new SqliteStateStore(join(dir, 'state.db'));
    // Each write awaited alone: one commit each, counted by kind.
    const kinds: Record<string, 'synced' | 'unsynced'> = {};
    const step = async (name: string, write: () => Promise<unknown>) => {
      const before = { ...store.commits };
      await write();
      kinds[name] = store.commits.synced > before.synced ? 'synced' : 'unsynced';
      expect(store.commits.synced + store.commits.unsynced).toBe(before.synced + before.unsynced + 1);
    };
    try {
      const startedAt = new Date().toISOString();
      await step('createJob', () => store.createJob(queuedJobRecord({ id: 'j1' })));
      await step('claim', () => store.claim('j1', 'w:1', 10_000));
      await step('claimMany', () => store.claimMany([{ key: 'j2', owner: 'w:2', leaseMs: 10_000 }]));
      await step('processing', () => store.updateJob('j1', { status: 'processing', attempts: 1 }, 'queued'));
      await step('attempt start', () => store.recordAttempt('j1', { attempt: 1, startedAt }));
      await step('progress', () =>
        store.updateJob('j1', { progress: { percent: 50, at: new Date().toISOString() } }),
      );
      await step('renew', () => store.renew('j1', 'w:1', 10_000));
      await step('complete', () => store.complete('j1', 'w:1', { ok: true }));
      await step('succeeded', () => store.updateJob('j1', { status: 'succeeded', attempts: 1, result: {} }));
      await step('attempt end', () =>
        store.recordAttempt('j1', {
          attempt: 1,
          startedAt,
          endedAt: new Date().toISOString(),
          outcome: 'succeeded',
        }),
      );
      await step('release', () => store.release('j2', 'w:2'));
      await step('cancelled', () => store.updateJob('j1', { status: 'cancelled' }));
      expect(kinds).toEqual({
        createJob: 'synced',
        claim: 'unsynced',
        claimMany: 'unsynced',
        processing: 'unsynced',
        'attempt start': 'unsynced',
        progress: 'unsynced',
        renew: 'unsynced',
        complete: 'synced',
        succeeded: 'synced',
        'attempt end': 'synced',
        release: 'synced',
        cancelled: 'synced',
      });
      // What the unsynced writes wrote is there all the same.
      expect((await store.getJob('j1'))?.status).toBe('cancelled');
      expect(await store.claim('j1', 'w:9', 10_000)).toMatchObject({ state: 'done' });
    } finally {
      await store.close();
    }
  });
});
