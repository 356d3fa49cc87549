import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deferred } from '@polyqueue/testkit';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { type Db, openDatabase, WriteBatcher } from '../src/database';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sqlite-group-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The level a commit of this connection runs at now (PRAGMA synchronous: 1 NORMAL, 2 FULL, 3 EXTRA). */
function syncLevel(db: Db): number {
  return Number(db.pragma('synchronous', { simple: true }));
}

function setUp(name: string) {
  const path = join(dir, `${name}.db`);
  const db = openDatabase(path);
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
  const insert = db.prepare('INSERT INTO t (k) VALUES (?)');
  const deferredErrors: unknown[] = [];
  const writes = new WriteBatcher(db, (error) => deferredErrors.push(error));
  // Another connection, as another process (a worker) would open the same file.
  const other = new Database(path);
  const keys = () =>
    other
      .prepare<[], { k: string }>('SELECT k FROM t ORDER BY k')
      .all()
      .map((r) => r.k);
  const close = () => {
    other.close();
    db.close();
  };
  return { db, insert, writes, other, keys, deferredErrors, close };
}

describe('WriteBatcher (group commit)', () => {
  it('commits the writes of one turn in one transaction, visible to another connection once each resolves', async () => {
    const { db, insert, writes, keys, close } = setUp('one-turn');
    try {
      // Each write looks from the other connection: a commit per write would show the earlier
      // writes' rows there; in one transaction none is visible until the batch commits.
      const seen: string[][] = [];
      const all = ['a', 'b', 'c'].map((k) =>
        writes.write(() => {
          insert.run(k);
          seen.push(keys());
          return k;
        }),
      );
      expect(await Promise.all(all)).toEqual(['a', 'b', 'c']);
      expect(seen).toEqual([[], [], []]); // none committed until the batch was
      expect(keys()).toEqual(['a', 'b', 'c']);
      expect(db.inTransaction).toBe(false);
    } finally {
      close();
    }
  });

  it('fails only the write that throws; the others of its batch commit', async () => {
    const { insert, writes, keys, deferredErrors, close } = setUp('one-fails');
    try {
      insert.run('taken');
      const results = await Promise.allSettled([
        writes.write(() => insert.run('a')),
        writes.write(() => {
          insert.run('b'); // undone with its savepoint: the write failed as a whole
          insert.run('taken');
        }),
        writes.write(() => insert.run('c')),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/UNIQUE/);
      writes.defer(() => insert.run('taken'));
      await writes.write(() => insert.run('d'));
      expect(deferredErrors).toHaveLength(1);
      expect(keys()).toEqual(['a', 'c', 'd', 'taken']);
    } finally {
      close();
    }
  });

  it('waits for another connection to release the write lock without blocking the event loop', async () => {
    const { insert, writes, other, keys, close } = setUp('locked');
    try {
      other.exec('BEGIN IMMEDIATE');
      let settled = false;
      const first = writes
        .write(() => insert.run('a'))
        .finally(() => {
          settled = true;
        });
      // The event loop keeps turning while the lock is held elsewhere (SQLite's busy handler
      // would sleep in this thread), and writes asked for meanwhile join the waiting batch.
      const turned = deferred();
      setTimeout(() => turned.resolve(), 20);
      await turned.promise;
      const second = writes.write(() => insert.run('b'));
      expect(settled).toBe(false);
      other.exec('COMMIT');
      await Promise.all([first, second]);
      expect(keys()).toEqual(['a', 'b']);
    } finally {
      close();
    }
  });

  it('fails the writes when the lock stays taken past busy_timeout', async () => {
    const { db, insert, writes, other, keys, close } = setUp('timeout');
    try {
      db.pragma('busy_timeout = 30');
      const shortWrites = new WriteBatcher(db, () => {});
      other.exec('BEGIN IMMEDIATE');
      await expect(shortWrites.write(() => insert.run('a'))).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
      other.exec('COMMIT');
      await writes.write(() => insert.run('b'));
      expect(keys()).toEqual(['b']);
    } finally {
      close();
    }
  });

  it('commits a write asked for as a committed write continues in the same turn, after it; the next one in the next turn', async () => {
    // The API's enqueue: the record commits (state file), then its message is published (queue
    // file). The message's commit follows the record's before the turn ends, not a turn later;
    // the write after that (the `queued` mark) joins the next turn's batch.
    const records = setUp('follow-up-records');
    const queue = setUp('follow-up-queue');
    try {
      const events: string[] = [];
      const marker = (name: string) => setImmediate(() => events.push(name));
      await records.writes.write(() => records.insert.run('record'));
      marker('turn after the record');
      expect(queue.keys()).toEqual([]);
      await queue.writes.write(() => queue.insert.run('message'));
      events.push('message committed');
      expect(records.keys()).toEqual(['record']); // the record was durable first
      expect(queue.keys()).toEqual(['message']);
      await records.writes.write(() => records.insert.run('mark'));
      events.push('mark committed');
      expect(events).toEqual(['message committed', 'turn after the record', 'mark committed']);
    } finally {
      records.close();
      queue.close();
    }
  });

  it('gathers the follow-ups of one commit into one more commit per batcher', async () => {
    const { insert, writes, keys, close } = setUp('follow-up-batch');
    try {
      // What each follow-up sees from another connection while it runs: one commit for the
      // three shows the first commit's rows and none of theirs.
      const seen: string[][] = [];
      const followUps = ['a', 'b', 'c'].map((k) =>
        writes
          .write(() => insert.run(k))
          .then(() =>
            writes.write(() => {
              insert.run(`${k}2`);
              seen.push(keys());
            }),
          ),
      );
      await Promise.all(followUps);
      expect(seen).toEqual([
        ['a', 'b', 'c'],
        ['a', 'b', 'c'],
        ['a', 'b', 'c'],
      ]);
      expect(keys()).toEqual(['a', 'a2', 'b', 'b2', 'c', 'c2']);
    } finally {
      close();
    }
  });

  it('syncs the WAL for a batch only when one of its writes asks for it, and counts both kinds of commit', async () => {
    const { db, insert, writes, keys, close } = setUp('sync-levels');
    // The level each write's transaction will commit at.
    const level = () => syncLevel(db);
    try {
      const unsynced = await Promise.all(
        ['a', 'b'].map((k) =>
          writes.write(
            () => {
              insert.run(k);
              return level();
            },
            { sync: false },
          ),
        ),
      );
      expect(unsynced).toEqual([1, 1]);
      expect(level()).toBe(2);
      // One write that must be on disk makes its whole batch synced.
      const mixed = await Promise.all([
        writes.write(
          () => {
            insert.run('c');
            return level();
          },
          { sync: false },
        ),
        writes.write(() => {
          insert.run('d');
          return level();
        }),
      ]);
      expect(mixed).toEqual([2, 2]);
      expect(keys()).toEqual(['a', 'b', 'c', 'd']);
      expect(writes.commits).toEqual({ synced: 1, unsynced: 1 });
    } finally {
      close();
    }
  });

  it('commits a flushWith of sync false unsynced, unless a queued write asks for the sync', async () => {
    const { db, insert, writes, keys, close } = setUp('flush-with-sync');
    const level = () => syncLevel(db);
    try {
      writes.defer(() => insert.run('a'), { sync: false });
      expect(writes.flushWith(level, { sync: false })).toBe(1);
      const synced = writes.write(() => insert.run('b'));
      expect(writes.flushWith(level, { sync: false })).toBe(2);
      await synced;
      expect(writes.flushWith(level)).toBe(2);
      expect(keys()).toEqual(['a', 'b']);
      expect(writes.commits).toEqual({ synced: 2, unsynced: 1 });
    } finally {
      close();
    }
  });

  it('leaves a connection opened with synchronous=NORMAL at NORMAL', async () => {
    const path = join(dir, 'normal.db');
    const db = openDatabase(path, 'NORMAL');
    const writes = new WriteBatcher(db, () => {});
    try {
      const level = await writes.write(() => syncLevel(db));
      expect(level).toBe(1);
      expect(writes.commits).toEqual({ synced: 0, unsynced: 1 });
    } finally {
      db.close();
    }
  });

  it('puts a connection at synchronous=EXTRA back at EXTRA after an unsynced commit', async () => {
    const db = openDatabase(join(dir, 'extra.db'));
    db.pragma('synchronous = EXTRA');
    const writes = new WriteBatcher(db, () => {});
    try {
      const during = await writes.write(() => syncLevel(db), { sync: false });
      expect(during).toBe(1);
      expect(syncLevel(db)).toBe(3);
    } finally {
      db.close();
    }
  });
});
