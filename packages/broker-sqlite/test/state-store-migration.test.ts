import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStateStore } from '../src/sqlite-state-store';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sqlite-migrate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite state store: a file made by an earlier version', () => {
  it('gains the progress and payload columns at open, keeps its records, and records progress on them', async () => {
    const path = join(dir, 'old.db');
    // The jobs table as versions before context.progress made it.
    const old = new Database(path);
    old.exec(`CREATE TABLE polyqueue_jobs (
      id TEXT PRIMARY KEY, type TEXT NOT NULL, queue TEXT NOT NULL, status TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, result TEXT, idempotency_key TEXT UNIQUE,
      request_hash TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`);
    const at = new Date().toISOString();
    old
      .prepare(
        `INSERT INTO polyqueue_jobs (id, type, queue, status, attempts, created_at, updated_at)
         VALUES ('old-1', 'resize_image', 'images', 'processing', 1, ?, ?)`,
      )
      .run(at, at);
    old.close();

    const store = new SqliteStateStore(path);
    try {
      const before = await store.getJob('old-1');
      expect(before).toMatchObject({ id: 'old-1', status: 'processing', attempts: 1 });
      expect(before!.progress).toBeUndefined();
      const progress = { percent: 50, message: 'done 1 of 2 variants', at };
      expect(await store.updateJob('old-1', { progress })).toBe(true);
      expect((await store.getJob('old-1'))!.progress).toEqual(progress);
      // ... and the payload column: a new job keeps its payload in the old file.
      const fresh = { ...before!, id: 'new-1', status: 'pending' as const, payload: { subject: 'hi' } };
      await store.createJob(fresh);
      expect(await store.getJob('new-1')).toEqual(fresh);
    } finally {
      await store.close();
    }
    // A second open of the migrated file adds nothing twice.
    const again = new SqliteStateStore(path);
    expect((await again.getJob('old-1'))!.progress).toMatchObject({ percent: 50 });
    await again.close();
  });
});
