/**
 * sqlite, best raw loop: the fewest synced commits better-sqlite3 allows for a leased,
 * at-least-once queue table (the driver's own table and claim statement).
 *
 *   enqueue  one transaction per batch of `batch` rows (one prepared INSERT per row inside it)
 *   process  one transaction per batch of 100 that deletes the batch handled before it AND
 *            claims the next 100 (the driver's UPDATE ... RETURNING lease claim); every job
 *            of a batch handled at once between two transactions. One commit, so one fsync,
 *            per 100 jobs where a claim transaction plus an ack transaction would cost two.
 *
 * Why it stays correct: a row is deleted only in the transaction after its handler resolved;
 * until then it carries a lease, so a crashed worker's rows are claimed again when the lease
 * runs out, and other processes' claims skip them (the claim is the driver's). Durability is the
 * driver's: WAL with SQLITE_SYNCHRONOUS (FULL by default).
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

const READ_COUNT = 100;
const LEASE_MS = 30_000;

export async function bestSqlite(options: BaselineOptions): Promise<Rates> {
  const path = options.env.SQLITE_PATH ?? join(mkdtempSync(join(tmpdir(), 'pq-bench-')), 'best.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.env.SQLITE_SYNCHRONOUS === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
  const table = `best_${Date.now().toString(36)}`;
  try {
    db.exec(queueTableSql(table));
    const insert = db.prepare(
      `INSERT INTO "${table}" (job_type, payload, envelope, job_id, priority, available_at) VALUES (?, ?, ?, ?, 1, 0)`,
    );
    const insertBatch = db.transaction((envelopes: ReturnType<typeof createEnvelope>[]) => {
      for (const e of envelopes) insert.run(e.type, JSON.stringify(e.payload), JSON.stringify(e), e.id);
    });
    const t0 = performance.now();
    for (let i = 0; i < options.jobs; i += options.batch) {
      const n = Math.min(options.batch, options.jobs - i);
      insertBatch(Array.from({ length: n }, (_, k) => createEnvelope('bench_job', { i: i + k })));
    }
    const enqueuePerSec = perSecond(options.jobs, t0);

    const claim = db.prepare(claimSql(table));
    const remove = db.prepare(
      `DELETE FROM "${table}" WHERE lease_owner = 'best' AND id IN (SELECT value FROM json_each(?))`,
    );
    const ackAndClaim = db.transaction((handled: number[]) => {
      if (handled.length > 0) remove.run(JSON.stringify(handled));
      const now = Date.now();
      return claim.all({ owner: 'best', expires: now + LEASE_MS, now, limit: READ_COUNT }) as {
        id: number;
        envelope: string;
      }[];
    });
    const t1 = performance.now();
    let done = 0;
    let handled: number[] = [];
    while (done < options.jobs) {
      const rows = ackAndClaim(handled);
      done += handled.length;
      await Promise.all(rows.map((row) => rawHandler(JSON.parse(row.envelope))));
      handled = rows.map((row) => row.id);
      if (rows.length === 0 && done < options.jobs)
        throw new Error(`sqlite best: ${done} of ${options.jobs} jobs found`);
    }
    return { enqueuePerSec, processPerSec: perSecond(options.jobs, t1) };
  } finally {
    db.close();
  }
}
