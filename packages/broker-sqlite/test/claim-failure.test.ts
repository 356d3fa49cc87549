import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEnvelope, encodeEnvelope } from '@polyqueue/core';
import { deferred, HandlerSpy } from '@polyqueue/testkit';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { testBroker } from './test-broker';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sqlite-busy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite consumer when a claim fails', () => {
  it('backs off, reports the outage and resumes once the database is writable again', async () => {
    const path = join(dir, 'busy.db');
    // Short, so a claim gives up with SQLITE_BUSY soon instead of after the default 10 s.
    const broker = testBroker(path, { busyTimeoutMs: 50 });
    await broker.stats('busy'); // creates the table before another connection locks the file
    const locker = new Database(path);
    const changes: Array<{ connected: boolean; error?: string }> = [];
    const lost = deferred();
    const back = deferred();
    const spy = new HandlerSpy(20_000);
    const controller = new AbortController();
    let consumeError: unknown;
    try {
      // A second writer holding the write lock past the busy timeout: every claim fails.
      locker.exec('BEGIN EXCLUSIVE');
      const done = broker
        .consume('busy', spy.handler(), {
          concurrency: 2,
          signal: controller.signal,
          onConnectionChange: (connected, error) => {
            changes.push({ connected, error: error?.message });
            (connected ? back : lost).resolve();
          },
        })
        .catch((error) => {
          consumeError = error;
          lost.resolve();
        });
      await lost.promise;
      expect(consumeError).toBeUndefined();
      expect(changes[0]).toMatchObject({ connected: false, error: expect.stringMatching(/locked|busy/i) });

      // The job is written by the lock holder and becomes visible when it commits.
      const envelope = createEnvelope('test_job', { n: 1 });
      locker
        .prepare('INSERT INTO polyqueue_busy (job_type, payload, envelope, job_id) VALUES (?, ?, ?, ?)')
        .run(envelope.type, '{}', encodeEnvelope(envelope), envelope.id);
      locker.exec('COMMIT');

      await spy.waitFor(() => spy.count(envelope.id) === 1, 'the job after the lock was released');
      await back.promise;
      expect(changes.at(-1)).toEqual({ connected: true, error: undefined });
      expect(consumeError).toBeUndefined();
      controller.abort();
      await done;
      expect(consumeError).toBeUndefined();
      expect(await broker.stats('busy')).toMatchObject({ ready: 0, inFlight: 0 });
    } finally {
      controller.abort();
      if (locker.inTransaction) locker.exec('ROLLBACK');
      locker.close();
      await broker.close();
    }
  });
});
