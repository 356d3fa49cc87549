/**
 * The classic MySQL queue worker that the mysql driver is measured against: one job per
 * transaction, as in the usual SKIP LOCKED examples.
 *
 *     BEGIN;
 *     SELECT id, job_type, payload FROM jobs ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED;
 *     -- handle the job
 *     DELETE FROM jobs WHERE id = ?;
 *     COMMIT;
 *
 * Same server, same durability (innodb_flush_log_at_trx_commit left at the server's setting),
 * same kind of table (id, job_type, payload, created_at). Rows are inserted in multi-row
 * statements first; only processing is timed, with one connection, as the pattern is written.
 */
import mysql from 'mysql2/promise';
import { createJobTable, dropJobTable, jobTableName, rowBatches } from './mysql-common';
import { rawHandler } from './raw-handler';

export interface NaiveOptions {
  /** mysql://user:password@host:port/database */
  url: string;
  jobs: number;
}

export async function naiveSkipLockedLoop(options: NaiveOptions): Promise<{ jobsPerSec: number }> {
  const connection = await mysql.createConnection({
    uri: options.url,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  const table = jobTableName('naive');
  try {
    await createJobTable(connection, table);
    for (const rows of rowBatches(options.jobs, 500, (e) => [e.type, JSON.stringify(e.payload)])) {
      await connection.query(`INSERT INTO \`${table}\` (job_type, payload) VALUES ?`, [rows]);
    }

    const t0 = performance.now();
    let done = 0;
    for (;;) {
      await connection.beginTransaction();
      const [rows] = await connection.query(
        `SELECT id, job_type, payload FROM \`${table}\` ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`,
      );
      const row = (rows as { id: string; job_type: string; payload: string }[])[0];
      if (!row) {
        await connection.commit();
        break;
      }
      await rawHandler({ type: row.job_type, payload: JSON.parse(row.payload) });
      await connection.query(`DELETE FROM \`${table}\` WHERE id = ?`, [row.id]);
      await connection.commit();
      done += 1;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { jobsPerSec: done / seconds };
  } finally {
    await dropJobTable(connection, table);
    await connection.end();
  }
}
