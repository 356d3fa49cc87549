/**
 * The sqlite driver's baseline: the same SQL it issues (its table and claim statements), by hand, with no framework between.
 * Inserts in transactions of `batch` rows; claims up to `concurrency` rows with the driver's
 * UPDATE ... RETURNING, runs an async no-op handler on each, deletes them in one transaction.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimSql, queueTableSql } from '@polyqueue/broker-sqlite';
import { createEnvelope } from '@polyqueue/core';
import Database from 'better-sqlite3';
import { perSecond, type Rates } from '../measure';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';

export async function sqliteRaw(options: BaselineOptions): Promise<Rates> {
  const path = options.env.SQLITE_PATH ?? join(mkdtempSync(join(tmpdir(), 'pq-bench-')), 'raw.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // The same durability as the driver under test.
  db.pragma(`synchronous = ${options.env.SQLITE_SYNCHRONOUS === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
  const table = `raw_${Date.now().toString(36)}`;
  db.exec(queueTableSql(table));
  const insert = db.prepare(
    `INSERT INTO "${table}" (job_type, payload, envelope, job_id, priority, available_at) VALUES (?, ?, ?, ?, 1, 0)`,
  );
  const claim = db.prepare(claimSql(table));
  const ack = db.prepare(`DELETE FROM "${table}" WHERE id = ? AND lease_owner = ?`);

  const t0 = performance.now();
  const insertBatch = db.transaction((envelopes: ReturnType<typeof createEnvelope>[]) => {
    for (const e of envelopes) insert.run(e.type, JSON.stringify(e.payload), JSON.stringify(e), e.id);
  });
  for (let i = 0; i < options.jobs; i += options.batch) {
    const n = Math.min(options.batch, options.jobs - i);
    insertBatch(Array.from({ length: n }, (_, k) => createEnvelope('bench_job', { i: i + k })));
  }
  const enqueuePerSec = perSecond(options.jobs, t0);

  const t1 = performance.now();
  const ackBatch = db.transaction((ids: number[]) => {
    for (const id of ids) ack.run(id, 'raw');
  });
  // A hand-written worker: claim a batch, run the async no-op handler on each job, delete the
  // batch in one transaction. The handler is the same contract polyqueue calls: async, per job.
  let done = 0;
  while (done < options.jobs) {
    const now = Date.now();
    const rows = claim.all({ owner: 'raw', expires: now + 30_000, now, limit: options.concurrency }) as {
      id: number;
      envelope: string;
    }[];
    await Promise.all(rows.map((row) => rawHandler(JSON.parse(row.envelope))));
    ackBatch(rows.map((r) => r.id));
    done += rows.length;
  }
  const processPerSec = perSecond(options.jobs, t1);
  db.close();
  return { enqueuePerSec, processPerSec };
}
